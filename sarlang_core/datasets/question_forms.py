"""The type of a question from its wording ("How many ships ..." is counting): one reader for the
importers (released SARLANG-1M questions carry no type) and for scoring files without a type
(LLaMA-Factory's ``generated_predictions.jsonl``). It knows the templates of ``templates.py``,
the paper's examples and the usual caption requests; any other question is "general"."""

from __future__ import annotations

import re
from typing import Optional

# "<image>The classes are: tank, car, .... How many cars are there?": the prefix names classes only
_CLASSES_PREFIX = re.compile(r"^the classes are:[^.]*\.\s*")
_BOX = r"[\[(]\s*-?\d+(?:\.\d+)?\s*(?:,\s*-?\d+(?:\.\d+)?\s*){3}[\])]"
# tried in order, the first match wins
FORMS = (
    ("referring", re.compile(rf"{_BOX}|\bin the (?:area|region) \[")),
    ("counting", re.compile(r"^(?:how many|what is the (?:total )?number of|count)\b")),
    ("positioning", re.compile(r"^(?:where\b|in which (?:part|half|side|corner|area)\b)")),
    ("classification", re.compile(r"^(?:what|which|list|name)\b.*\b(?:main (?:object|category)|categor(?:y|ies)|"
                                  r"kind of object|type of object|class(?:es)? of)\b|^what is the object\b")),
    ("identification", re.compile(r"(?:^|, )(?:is|are|does|do|can|could)\b.*\b(?:there|any|exist|exists|visible|see|"
                                  r"contain|contains|present)\b")),
    ("caption_detailed", re.compile(r"^(?:describe .*\bdetail|provide a detailed|give a detailed)|"
                                    r"(?:\bcaption\b|\bdescribe (?:the|this) image\b).*\bdetail")),
    ("caption_concise", re.compile(r"^(?:describe|caption|summari[sz]e)\b|\bcaption\b|"
                                   r"\bdescribe (?:the|this) image\b")),
)


def question_type(question: Optional[str]) -> str:
    """One of the item types, "general" for any other question, "" for no question."""
    q = re.sub(r"\s+", " ", str(question or "").replace("<image>", " ").strip().lower())
    q = _CLASSES_PREFIX.sub("", q)
    if not q:
        return ""
    for qtype, form in FORMS:
        if form.search(q):
            return qtype
    return "general"
