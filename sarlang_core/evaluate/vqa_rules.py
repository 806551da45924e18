"""Rule-based answer matching: the authors' pre-judge and a stricter variant.

``paper_prejudge`` reproduces the rule SARLANG-1M took from VRSBench (facts read from VRSBench's
``eval_fianl/eval_vqa_gpt.ipynb``, lx709/VRSBench): ground truth and prediction are lower-cased
(nothing is stripped); if the ground truth is a substring of the prediction the answer matches;
else a ground truth in {"yes", "no", "0" .. "99"} matches only when equal to the prediction
(which, the substring test having failed, means never); else GPT decides. Loose by design:
"1" matches "12", "no" matches "not sure".

``strict_prejudge`` keeps the three outcomes (True, False, None = ask the judge) but matches
whole words after normalising case, punctuation, number words and a small synonym table. A hedge
or refusal ("not sure", "I don't know", "cannot determine", ...) is not an answer: it is wrong,
decided by rule, never "no" (its "not" is no negation of the question) and never sent to a judge
(which could be lenient with it), unless the ground truth itself is such a phrase.
"""

from __future__ import annotations

import re
from typing import Optional

from ..text_numbers import is_number_phrase, parse_number

__all__ = ["paper_prejudge", "strict_prejudge", "parse_number", "normalise", "is_hedge", "SYNONYMS"]

_PAPER_CLOSED = frozenset(["yes", "no"] + [str(i) for i in range(100)])


def paper_prejudge(question: str, label: str, predict: str) -> Optional[bool]:
    """True/False by the authors' rule, or None when their judge would have been asked."""
    gt, pred = str(label).lower(), str(predict).lower()
    if gt in pred:
        return True
    if gt in _PAPER_CLOSED:
        return gt == pred
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


# hedges and refusals, matched on normalise()d text (so "don't" is "don t")
_HEDGES = re.compile(r"\b(?:" + "|".join([
    r"not (?:sure|certain|clear|known|possible to (?:tell|say|determine|know))", r"unsure", r"uncertain",
    r"unclear", r"no idea", r"hard to (?:tell|say)", r"difficult to (?:tell|say|determine)",
    r"(?:i )?(?:don t|do not|dont) know", r"(?:can t|cannot|can not|couldn t|could not|unable to|impossible to)"
    r" (?:be )?(?:tell|say|determine|determined|answer|know|discern|confirm|judge)",
    r"i m sorry", r"sorry", r"as an ai",
]) + r")\b")


def is_hedge(text: str) -> bool:
    """True when ``text`` hedges or refuses ("Not sure.", "I don't know", "cannot determine")."""
    return bool(_HEDGES.search(normalise(text)))


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
    if is_hedge(predict) and not is_hedge(label):
        return False
    if gt in ("yes", "no"):
        said = _yes_no(predict)   # None: both or neither said; a judge may read the sentence
        return None if said is None else said == gt
    if gt.isdigit() or (gt and is_number_phrase(gt)):
        return parse_number(predict) == parse_number(gt)
    if gt and re.search(rf"(?<!\w){re.escape(gt)}(?!\w)", pred):
        return True
    return None
