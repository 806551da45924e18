"""Words of an answer and the tokens they are made of.

A word is a run of letters or digits (with inner ' - . as in "don't", "x-band", "2.5"); its
tokens are those whose decoded text overlaps it, so a word split into sub-word pieces gets
all of them, and a token holding the space before a word belongs to that word. Character
spans come from decoding growing prefixes, which is right for byte-level BPE (Qwen) and
SentencePiece (LLaVA) alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Sequence, Tuple

WORD = re.compile(r"[^\W_]+(?:['’\-.][^\W_]+)*")

# Function words: not "content" (the strip of words leaves them out; they can still be clicked).
STOPWORDS = frozenset("""
a an the and or but if of in on at to for from by with without into onto over under above below near
is are was were be been being am it its this that these those there here which who whom whose what
where when why how as than then so such not no nor very can could would should will may might must
do does did done has have had i you he she we they them their his her our your my me us
image picture scene shows show shown appears appear visible some any each one's also
""".split())


@dataclass(frozen=True)
class Word:
    index: int                      # its place among the answer's words
    text: str
    chars: Tuple[int, int]          # [start, end) in the answer text
    tokens: Tuple[int, int]         # [first, last + 1) among the answer's tokens

    @property
    def content(self) -> bool:
        """A word that names something (not a function word)."""
        return self.text.lower() not in STOPWORDS


@dataclass(frozen=True)
class WordSpan:
    """A word of a text without its tokens (what a view needs to make the words clickable)."""

    index: int
    text: str
    start: int
    end: int
    content: bool


def text_words(text: str) -> List[WordSpan]:
    """The words of ``text`` as ``split_words`` numbers them (same rule, no tokenizer needed)."""
    return [WordSpan(i, m.group(), m.start(), m.end(), m.group().lower() not in STOPWORDS)
            for i, m in enumerate(WORD.finditer(text))]


def token_ends(tokenizer, ids: Sequence[int]) -> Tuple[str, List[int]]:
    """The decoded answer and, for each token, where its text ends in it."""
    ends, text = [], ""
    for k in range(1, len(ids) + 1):
        text = tokenizer.decode(list(ids[:k]), skip_special_tokens=True, clean_up_tokenization_spaces=False)
        ends.append(len(text))
    return text, ends


def split_words(text: str, ends: Sequence[int]) -> List[Word]:
    """The words of ``text`` with the span of tokens (ending at ``ends``) that spell each."""
    starts = [0] + list(ends[:-1])
    words: List[Word] = []
    for m in WORD.finditer(text):
        a, b = m.span()
        toks = [k for k, (s, e) in enumerate(zip(starts, ends)) if e > s and s < b and e > a]
        if toks:
            words.append(Word(len(words), m.group(), (a, b), (toks[0], toks[-1] + 1)))
    return words


def answer_words(tokenizer, ids: Sequence[int]) -> Tuple[str, List[Word]]:
    text, ends = token_ends(tokenizer, ids)
    return text, split_words(text, ends)
