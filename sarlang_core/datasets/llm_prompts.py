"""The editable prompts of LLM generation by modality transfer (see llm_generation) and the
reading of a model's "general inquiries" answer."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Dict, List, Union

from ..atomic import write_text_atomic
from ..errors import RequestError

INQUIRY_CATEGORIES = ("shape", "direction", "land cover", "pattern", "reasoning")
KINDS = ("concise", "detailed", "inquiries")

@dataclass
class PromptSet:
    """Editable prompt templates. ``inquiries`` may use ``{n}`` (number of QA pairs) and
    ``{categories}``. The ``*_question`` fields become the Items' question for captions."""
    id: str = "sarlang-default-v1"
    concise: str = (
        "This is an optical remote sensing image. A SAR image of exactly the same place will be "
        "described with your text, so describe only what a radar image also shows: objects, their "
        "layout, shapes and land cover. Do not mention colours (SAR images have none), lighting, "
        "shadows of sunlight or that this is an optical image. "
        "Describe the content of this image in one sentence.")
    detailed: str = (
        "This is an optical remote sensing image. A SAR image of exactly the same place will be "
        "described with your text, so describe only what a radar image also shows. Do not mention "
        "colours (SAR images have none), lighting or that this is an optical image. "
        "Describe the image in detail in one paragraph: the overall scene, the main objects and "
        "their number, shapes and positions, the land cover, and how the objects relate to each other.")
    inquiries: str = (
        "This is an optical remote sensing image. A SAR image of exactly the same place will be asked "
        "about with your questions, so ask only about what a radar image also shows, and never about "
        "colours (SAR images have none) or lighting. Write {n} different question-answer pairs about "
        "this scene, covering these categories: {categories} (shape = object shapes, direction = "
        "object orientation or direction, land cover = land cover classification, pattern = spatial "
        "patterns or arrangements, reasoning = inferences about function or use). Keep answers short "
        "and factual. Reply with only a JSON array, no other text, like: "
        '[{{"question": "...", "answer": "...", "category": "shape"}}]')
    n_inquiries: int = 5
    concise_question: str = "Describe the content of this image in one sentence."
    detailed_question: str = "Describe the content of this image in detail."

    def __post_init__(self) -> None:
        if not str(self.id).strip():
            raise RequestError("a prompt set needs an id")
        for name in KINDS + ("concise_question", "detailed_question"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise RequestError(f"the prompt '{name}' is empty")
        if not (isinstance(self.n_inquiries, int) and 0 <= self.n_inquiries <= 50):
            raise RequestError(f"n_inquiries must be 0..50, got {self.n_inquiries!r}")
        try:
            self.inquiries.format(n=1, categories="")
        except (KeyError, IndexError, ValueError) as e:
            raise RequestError(f"the inquiries prompt has a bad placeholder ({e}); "
                               "use {n}, {categories} and double {{ }} for literal braces") from None

    def text(self, kind: str) -> str:
        if kind == "inquiries":
            return self.inquiries.format(n=self.n_inquiries, categories=", ".join(INQUIRY_CATEGORIES))
        return getattr(self, kind)

    def prompt_id(self, kind: str) -> str:
        """``<set id>/<kind>/<8 hex of the prompt text>``: changes when the template is edited."""
        return f"{self.id}/{kind}/{hashlib.sha256(self.text(kind).encode()).hexdigest()[:8]}"

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "PromptSet":
        if not isinstance(data, dict):
            raise RequestError("a prompt set file must hold a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RequestError(f"unknown prompt set fields: {', '.join(unknown)}")
        return cls(**data)

    def save(self, path: Union[str, Path]) -> None:
        write_text_atomic(Path(path), json.dumps(self.to_dict(), indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, path: Union[str, Path]) -> "PromptSet":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RequestError(f"cannot read the prompt set {path}: {e}") from None
        return cls.from_dict(data)


DEFAULT_PROMPTS = PromptSet()


def parse_inquiries(text: str) -> List[Dict[str, str]]:
    """QA pairs from a model's answer; raises ValueError when there is no usable JSON array."""
    s = re.sub(r"```(?:json)?", "", text or "", flags=re.I).strip()
    data: Any = None
    try:
        data = json.loads(s)
    except ValueError:
        start, end = s.find("["), s.rfind("]")
        if start < 0 or end <= start:
            raise ValueError("no JSON array in the answer") from None
        try:
            data = json.loads(s[start:end + 1])
        except ValueError as e:   # JSONDecodeError, or a plain ValueError (e.g. a too-long integer)
            detail = e.msg if isinstance(e, json.JSONDecodeError) else str(e)
            raise ValueError(f"the JSON array does not parse ({detail})") from None
    if isinstance(data, dict):   # {"questions": [...]} and similar wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        data = lists[0] if len(lists) == 1 else None
    if not isinstance(data, list):
        raise ValueError("the answer is not a JSON array")
    out = []
    for entry in data:
        if not isinstance(entry, dict):
            continue
        q, a = entry.get("question"), entry.get("answer")
        if not isinstance(q, str) or not q.strip() or not isinstance(a, (str, int, float)) or isinstance(a, bool):
            continue
        a = str(a).strip()
        if not a:
            continue
        cat = str(entry.get("category") or "").strip().lower().replace("_", " ").replace("-", " ")
        cat = " ".join(cat.split())
        out.append({"question": q.strip(), "answer": a, "category": cat if cat in INQUIRY_CATEGORIES else "other"})
    if not out:
        raise ValueError("the JSON array holds no question-answer pairs")
    return out
