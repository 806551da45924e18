"""The words of a chat answer as links, and which map goes with which word.

A link in the chat reads ``explain:<exchange index>:<word index>``; word indices are those of
``services.explain.text_words`` on the exchange's answer, known before any map is computed.
"""

from __future__ import annotations

import html
from typing import Dict, List, Optional, Tuple

from sarlang_core.services.explain import text_words

SCHEME = "explain"


def href(exchange: int, word: int) -> str:
    return f"{SCHEME}:{exchange}:{word}"


def parse_href(text: str) -> Optional[Tuple[int, int]]:
    """(exchange index, word index) of an ``explain:`` link, None for any other text."""
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != SCHEME or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])


def chat_links(exchange: int, answer: str) -> List[Tuple[int, int, str, bool]]:
    """(start, end, href, content word) for each word of ``answer``."""
    return [(w.start, w.end, href(exchange, w.index), w.content) for w in text_words(answer)]


def align(answer: str, maps) -> Dict[int, object]:
    """The WordMap of each word of ``answer`` (by its text_words index), matching ``maps`` (the
    explanation's WordMaps, in answer order) by index and text, else by the next same text: a word
    the model's tokens do not spell has no map."""
    spans = text_words(answer)
    by_index = {m.word.index: m for m in maps}
    if all(by_index.get(w.index) is not None and by_index[w.index].text == w.text for w in spans):
        return {w.index: by_index[w.index] for w in spans}
    out: Dict[int, object] = {}
    k = 0
    for w in spans:
        for j in range(k, len(maps)):
            if maps[j].text == w.text:
                out[w.index] = maps[j]
                k = j + 1
                break
    return out


def answer_html(answer: str, mapped, current: Optional[int]) -> str:
    """The answer with its mapped words as links ``word:<index>``, ``current`` highlighted."""
    parts, pos = [], 0
    for w in text_words(answer):
        parts.append(html.escape(answer[pos:w.start]))
        text = html.escape(w.text)
        if w.index == current:
            parts.append(f'<a href="word:{w.index}" style="color:#ffffff;background-color:#7a4b00;'
                         f'text-decoration:none"><b>{text}</b></a>')
        elif w.index in mapped:
            colour = "#9fd8ff" if w.content else "#b8c4d0"
            parts.append(f'<a href="word:{w.index}" style="color:{colour};text-decoration:none">{text}</a>')
        else:
            parts.append(text)
        pos = w.end
    parts.append(html.escape(answer[pos:]))
    return "<div>" + "".join(parts).replace("\n", "<br>") + "</div>"
