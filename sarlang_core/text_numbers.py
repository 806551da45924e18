"""Counts written in answers: digits ("12", "1,000") or English number words ("three",
"twenty-one", "one hundred and five"); "no"/"none" at the start of an answer means 0. Shared by
VQA scoring (counting accuracy and MAE) and the dataset statistics (answer histograms)."""

from __future__ import annotations

import re
from typing import List, Optional

__all__ = ["parse_number", "is_number_phrase"]

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i >= 2}
_NONE_WORDS = frozenset(["no", "none", "nothing", "zero"])
_NUMBER_WORD = "|".join(sorted(list(_UNITS) + list(_TENS) + ["hundred", "a", "and", "single"], key=len, reverse=True))
_NUMBER_RE = re.compile(rf"\d[\d,]*|(?:\b(?:{_NUMBER_WORD})\b[\s-]*)+", re.IGNORECASE)


def _words_value(words: List[str]) -> Optional[int]:
    value, seen = 0, False
    for w in words:
        if w in _UNITS or w in _TENS or w == "single":
            value += _UNITS.get(w, _TENS.get(w, 1))
        elif w == "hundred":
            value = (value or 1) * 100
        else:   # "a", "and"
            continue
        seen = True
    return value if seen else None


def parse_number(text: str) -> Optional[int]:
    """The first count in ``text``: digits ("12", "1,000") or English words up to the hundreds
    ("three", "twenty-one", "one hundred and five"); "no"/"none" before a noun means 0."""
    s = str(text or "").strip().lower()
    if not s:
        return None
    for m in _NUMBER_RE.finditer(s):
        chunk = m.group().strip(" -")
        if chunk[:1].isdigit():
            return int(chunk.replace(",", ""))
        value = _words_value(re.split(r"[\s-]+", chunk))
        if value is not None:
            return value
    if re.match(r"^(?:there (?:are|is) )?(?:no|none|nothing|zero)\b", s):
        return 0
    return None


def is_number_phrase(text: str) -> bool:
    """True when every word of ``text`` is part of an English number ("twenty one")."""
    return all(w in _UNITS or w in _TENS or w in ("hundred", "and", "a") for w in re.split(r"[\s-]+", text) if w)
