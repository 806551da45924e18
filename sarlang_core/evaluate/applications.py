"""The paper's seven applications (Table 4 of SARLANG-1M) and the question types behind them.

``classify(item_type)`` maps our item types (``sarlang_core.datasets.records.ITEM_TYPES``) and the
paper's spellings ("object identification", "instance counting", "general inquiries", ...) to
``(application, question_type)``; anything else is ``("unspecified", <the type as given>)``.
``infer_type(question)`` reads the type from the question's form (the templates in
``datasets/templates.py`` and the paper's examples) for files that carry no type, such as
LLaMA-Factory's ``generated_predictions.jsonl``.
"""

from __future__ import annotations

import re
from typing import Dict, Optional, Tuple

from ..datasets.question_forms import question_type

__all__ = ["APPLICATIONS", "QUESTION_TYPES", "UNSPECIFIED", "classify", "application_of", "infer_type"]

APPLICATIONS = ("image description", "object identification", "object classification", "instance counting",
                "region referring", "object positioning", "others")
UNSPECIFIED = "unspecified"

# question type (our ITEM_TYPES names) -> application
QUESTION_TYPES: Dict[str, str] = {
    "caption_concise": "image description",
    "caption_detailed": "image description",
    "identification": "object identification",
    "classification": "object classification",
    "counting": "instance counting",
    "referring": "region referring",
    "positioning": "object positioning",
    "general": "others",
}

# other spellings (normalised: lower case, "_"/"-" -> space) -> our question type
_ALIASES: Dict[str, str] = {
    "concise caption": "caption_concise", "caption concise": "caption_concise", "concise": "caption_concise",
    "detailed caption": "caption_detailed", "caption detailed": "caption_detailed",
    "complex caption": "caption_detailed", "detailed": "caption_detailed", "complex": "caption_detailed",
    "caption": "caption_concise", "image description": "caption_concise", "description": "caption_concise",
    "object identification": "identification", "identify": "identification",
    "object classification": "classification", "classify": "classification",
    "instance counting": "counting", "object counting": "counting", "count": "counting",
    "region referring": "referring", "refer": "referring", "referring expression": "referring",
    "object positioning": "positioning", "object position": "positioning", "position": "positioning",
    "general inquiries": "general", "general inquiry": "general", "others": "general", "other": "general",
    # the five kinds the paper lists under "others" (Figure 4)
    "object shape": "general", "shape": "general", "object direction": "general", "direction": "general",
    "land cover": "general", "pattern": "general", "reasoning": "general",
}


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(text or "").strip().lower()))


def classify(item_type: Optional[str]) -> Tuple[str, str]:
    """``(application, question_type)`` for an item type in any of the spellings above."""
    raw = str(item_type or "").strip()
    key = raw.lower()
    if key in QUESTION_TYPES:
        return QUESTION_TYPES[key], key
    qtype = _ALIASES.get(_norm(raw))
    if qtype is None and _norm(raw).replace(" ", "_") in QUESTION_TYPES:
        qtype = _norm(raw).replace(" ", "_")
    if qtype is None:
        return UNSPECIFIED, raw or UNSPECIFIED
    return QUESTION_TYPES[qtype], qtype


def application_of(item_type: Optional[str]) -> str:
    return classify(item_type)[0]


def infer_type(question: Optional[str]) -> str:
    """The question type its wording shows ("counting" for "How many ships ..."), "general" for any
    other question, "" without one (``datasets.question_forms``, shared with the importers)."""
    return question_type(question)
