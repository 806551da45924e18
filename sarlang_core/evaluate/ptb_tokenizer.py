"""A pure-Python stand-in for pycocoevalcap's ``PTBTokenizer`` (no Java needed).

pycocoevalcap runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` over all
captions and then drops the punctuation tokens in ``PUNCTUATIONS``. ``ptb_tokens`` aims at the same
token list for caption-like English; the rules below were measured against that jar
(tests/core/test_evaluate_captions.py compares the two when ``java`` is on PATH). Known gaps, all
rare in captions: smileys, SGML tags, URLs with trailing punctuation, ``y'all``, a single letter
followed by "...", and CoreNLP's quirk of not lower-casing the very first token of its input
when it carries a contraction ("There's" at the start of the whole file).

Note that CoreNLP lower-cases its bracket tokens ("-lrb-"), so pycocoevalcap's filter (written
"-LRB-") keeps them; we keep them too, on purpose.
"""

from __future__ import annotations

import re
from typing import List

__all__ = ["PUNCTUATIONS", "ptb_tokens", "ptb_tokenize"]

PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])

_AL = r"[^\W_]"   # a letter or digit (unicode aware)
# a word: letters/digits joined by hyphen, slash, inner dot or apostrophe, 1,000-style commas,
# 2:30-style colons and AT&T-style ampersands
_WORD = (rf"{_AL}+(?:(?:(?<=\d),(?=\d{{3}}(?!{_AL}))|(?<=\d):(?=\d)|(?<=[A-Z])&(?=[A-Z])"
         rf"|[-/.'](?={_AL})){_AL}+)*")
_SCAN = re.compile("|".join([
    r"(?P<url>(?:https?://|www\.)\S+[^\W_/]|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)",
    r"(?P<ellipsis>\.\.+)",
    r"(?P<dashes>--+)",
    r"(?P<signed>(?<![^\s(\[{\"'])[+-]\d+(?:[.,]\d+)*)",
    r"(?P<tis>(?i:'t)(?=(?i:is|was)\b))",
    rf"(?P<quoted_num>'\d+s?(?!{_AL}))",
    rf"(?P<word>{_WORD})",
    r"(?P<marks>[?!]+)",
    r"(?P<other>\S)",
]))

_BRACKETS = {"(": "-LRB-", ")": "-RRB-", "[": "-LSB-", "]": "-RSB-", "{": "-LCB-", "}": "-RCB-"}
_UNICODE = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u2014": "--",
                          "\u2013": "--", "\u2026": "...", "\u00a0": " "})
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"),
                "gotta": ("got", "ta"), "lemme": ("lem", "me"), "gimme": ("gim", "me")}
_CLITIC = re.compile(r"^(.*[^\W_])('s|'re|'ll|'ve|'d|'m|n't)$", re.IGNORECASE)
# abbreviations that keep their dot (CoreNLP's lists are longer; these are the ones captions use)
_ABBREV = frozenset("""mr mrs ms dr prof st mt ft fig figs ave blvd gen sen rep gov col capt lt sgt
    co vs etc jan feb mar apr jun jul aug sep sept oct nov dec rd sq""".split())
# abbreviations that may also end a sentence: followed by a capital or the line end they are
# followed by an extra "." token ("Corp. The" -> "corp. . the")
_SENT_ABBREV = frozenset("jr sr bros corp inc ltd".split())
# an acronym ("U.S.", "p.m.") ends a sentence only when one of these words follows
_STARTERS = frozenset("""The This That These Those It Its He She We They I In On At There But And
    However A An""".split())


def _split_word(word: str) -> List[str]:
    low = word.lower()
    if low in _SPLIT_WORDS:
        return [word[:len(_SPLIT_WORDS[low][0])], word[len(_SPLIT_WORDS[low][0]):]]
    tail: List[str] = []
    while True:
        m = _CLITIC.match(word)
        if not m:
            break
        word, clitic = m.group(1), m.group(2)
        tail.insert(0, clitic)
    return [word] + tail


def _dot_tokens(word: str, rest: str) -> List[str]:
    """Tokens for ``word`` followed by a single "." (``rest`` is the text after that dot)."""
    after = rest.lstrip()
    eol = not after
    next_upper = bool(after) and rest[:1].isspace() and after[0].isupper()
    low = word.lower()
    if len(word) == 1 and word.isalpha():
        if word.isupper() and (eol or next_upper):
            return [word, "."]
        return [word + "."]
    if "." in word and re.fullmatch(r"(?:[^\W\d_]+\.)+[^\W\d_]+", word):   # e.g, u.s, p.m, ph.d
        following = after.split(None, 1)[0] if after else ""
        return [word + ".", "."] if rest[:1].isspace() and following in _STARTERS else [word + "."]
    if low in _SENT_ABBREV:
        return [word + ".", "."] if (eol or next_upper) else [word + "."]
    if low in _ABBREV or (low == "no" and after[:1].isdigit()):
        return [word + "."]
    return [word, "."]


# whitespace-free chunks; group 1 holds a chunk of plain ASCII letters and digits, which is one
# token whatever surrounds it (no rule above looks across whitespace except the "." handling,
# which such a chunk does not have), unless it is one of _SPLIT_WORDS (5 or 6 letters)
_CHUNK = re.compile(r"([A-Za-z0-9]+(?!\S))|\S+")


def _raw_tokens(line: str) -> List[str]:
    line = line.translate(_UNICODE)
    out: List[str] = []
    append = out.append
    for chunk in _CHUNK.finditer(line):
        plain = chunk.group(1)
        if plain is not None and (not 5 <= len(plain) <= 6 or plain.lower() not in _SPLIT_WORDS):
            append(plain)
        else:
            _scan(line, chunk.start(), chunk.end(), out)
    return out


def _scan(line: str, pos: int, end: int, out: List[str]) -> None:
    """Tokens of the whitespace-free stretch ``line[pos:end]`` (no token spans whitespace;
    the rules may look at the text around it)."""
    while pos < end:
        m = _SCAN.match(line, pos)
        assert m is not None   # (?P<other>\S) matches any character of a whitespace-free stretch
        kind, text = m.lastgroup, m.group()
        pos = m.end()
        if kind == "word":
            parts = _split_word(text)
            if line.startswith(".", pos) and not line.startswith("..", pos) and len(parts) == 1:
                parts = _dot_tokens(text, line[pos + 1:])
                pos += 1
            out.extend(parts)
        elif kind == "ellipsis":
            out.append("...")
        elif kind == "dashes":
            out.append("--")
        elif kind == "other":
            if text == '"':
                nxt = line[pos:pos + 1]
                out.append("``" if nxt and (nxt.isalnum() or nxt in "([{'") else "''")
            elif text == "'":
                nxt = line[pos:pos + 1]
                out.append("`" if nxt.isalpha() and (not out or line[m.start() - 1:m.start()].isspace()
                                                     or m.start() == 0) else "'")
            else:
                out.append(_BRACKETS.get(text, text))
        else:
            out.append(text)


def ptb_tokens(text: str, *, drop_punctuation: bool = True) -> List[str]:
    """Lower-cased PTB tokens of one caption (newlines count as spaces, as in pycocoevalcap)."""
    tokens = [t.lower() for t in _raw_tokens(text.replace("\n", " "))]
    if drop_punctuation:
        tokens = [t for t in tokens if t not in PUNCTUATIONS]
    return tokens


def ptb_tokenize(text: str) -> str:
    """The caption as pycocoevalcap's tokenizer hands it to the scorers: tokens joined by spaces."""
    return " ".join(ptb_tokens(text))
