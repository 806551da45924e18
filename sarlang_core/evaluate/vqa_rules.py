"""Rule-based answer matching: the authors' pre-judge and a stricter variant.

``paper_prejudge`` reproduces the rule SARLANG-1M took from VRSBench (facts read from VRSBench's
``eval_fianl/eval_vqa_gpt.ipynb``, lx709/VRSBench): ground truth and prediction are lower-cased
(nothing is stripped); if the ground truth is a substring of the prediction the answer matches;
else a ground truth in {"yes", "no", "0" .. "99"} matches only when equal to the prediction
(which, the substring test having failed, means never); else GPT decides. Loose by design:
"1" matches "12", "no" matches "not sure".

``strict_prejudge`` keeps the three outcomes (True, False, None = ask the judge) but matches
whole words after normalising case, punctuation, number words and a small synonym table.
"""

from __future__ import annotations

import re
from typing import List, Optional

__all__ = ["paper_prejudge", "strict_prejudge", "parse_number", "normalise", "SYNONYMS"]

_PAPER_CLOSED = frozenset(["yes", "no"] + [str(i) for i in range(100)])


def paper_prejudge(question: str, label: str, predict: str) -> Optional[bool]:
    """True/False by the authors' rule, or None when their judge would have been asked."""
    gt, pred = str(label).lower(), str(predict).lower()
    if gt in pred:
        return True
    if gt in _PAPER_CLOSED:
        return gt == pred
    return None


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


# a small, deliberately conservative synonym table: each group collapses to its first word
SYNONYMS = [
    ("center", "centre", "middle", "central"),
    ("aircraft", "airplane", "aeroplane", "plane", "planes", "airplanes", "aeroplanes"),
    ("ship", "boat", "vessel", "ships", "boats", "vessels"),
    ("harbor", "harbour", "port", "harbors", "harbours", "ports"),
    ("car", "vehicle", "cars", "vehicles"),
    ("tank", "storage tank", "oil tank", "tanks", "storage tanks", "oil tanks"),
    ("top", "upper"),
    ("bottom", "lower"),
    ("grey", "gray"),
    ("yes", "yeah", "yep", "true", "correct"),
    ("no", "nope", "false"),
]
_SYN = {}
for _group in SYNONYMS:
    for _w in _group:
        _SYN[_w] = _group[0]
_SYN_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SYN), key=len, reverse=True)) + r")\b")


def normalise(text: str) -> str:
    """Lower case, punctuation to spaces (hyphens too), synonyms folded, single spaces."""
    s = re.sub(r"[^\w\s]", " ", str(text or "").lower())
    s = re.sub(r"\s+", " ", s).strip()
    return _SYN_RE.sub(lambda m: _SYN[m.group(1)], s)


def _yes_no(text: str) -> Optional[str]:
    words = set(normalise(text).split())
    has_yes, has_no = "yes" in words, bool(words & {"no", "not", "none"})
    if has_yes == has_no:
        return None
    return "yes" if has_yes else "no"


def strict_prejudge(question: str, label: str, predict: str) -> Optional[bool]:
    """True/False when rules can decide, None when a judge is needed (see module notes)."""
    gt, pred = normalise(label), normalise(predict)
    if not pred:
        return False
    if gt in ("yes", "no"):
        said = _yes_no(predict)   # None: both or neither said; a judge may read the sentence
        return None if said is None else said == gt
    if gt.isdigit() or (gt and _all_number_words(gt)):
        return parse_number(predict) == parse_number(gt)
    if gt and re.search(rf"(?<!\w){re.escape(gt)}(?!\w)", pred):
        return True
    return None


def _all_number_words(text: str) -> bool:
    return all(w in _UNITS or w in _TENS or w in ("hundred", "and", "a") for w in re.split(r"[\s-]+", text) if w)
