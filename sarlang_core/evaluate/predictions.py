"""Read LLaMA-Factory's ``generated_predictions.jsonl`` (one JSON object a line: ``label``,
``predict``, and optionally ``question``, ``type``, ``id``, ``prompt``).

Bad lines are skipped with a "FILE:LINE: problem" message; bytes that are not UTF-8 are decoded
with replacement characters and reported. Where ``question`` is missing, it is taken from
``prompt``, which holds the whole rendered chat: the text of the last user turn (Qwen/ChatML
"<|im_start|>user ... <|im_end|>", the plain "user\\n ... \\nassistant" form left after special
tokens are skipped, or LLaVA's "USER: ... ASSISTANT:"), without image placeholders, and without
the paper's VQA wrapper "Question: {q}. Answer the question concisely." when present.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..errors import SarlangError

__all__ = ["PredictionRecord", "PredictionFile", "read_predictions", "question_from_prompt"]


@dataclass(frozen=True)
class PredictionRecord:
    id: str
    label: str
    predict: str
    question: str = ""
    type: str = ""
    line: int = 0


@dataclass
class PredictionFile:
    path: str
    records: List[PredictionRecord] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    skipped: int = 0


_USER_TURNS = (
    re.compile(r"<\|im_start\|>user\s*(.*?)(?:<\|im_end\|>|$)", re.S),
    re.compile(r"(?:^|\n)user\n(.*?)(?=\n(?:assistant|system|user)\n|\nassistant\s*$|$)", re.S),
    re.compile(r"USER:\s*(.*?)(?=\s*ASSISTANT:|$)", re.S),
)
_IMAGE_TOKENS = re.compile(r"<\|vision_start\|>.*?<\|vision_end\|>|<\|image_pad\|>|<image>|<\|image\|>", re.S)
_PAPER_VQA = re.compile(r"^Question:\s*(.*?)\.?\s*Answer the question concisely\.?$", re.S | re.I)


def question_from_prompt(prompt: str) -> str:
    """The last user question inside a rendered chat prompt ("" when none is found)."""
    text = str(prompt or "")
    found: Optional[str] = None
    for pattern in _USER_TURNS:
        turns = pattern.findall(text)
        if turns:
            found = turns[-1]
            break
    if found is None:
        return ""
    found = _IMAGE_TOKENS.sub("", found).strip()
    m = _PAPER_VQA.match(found)
    return m.group(1).strip() if m else found


def read_predictions(path) -> PredictionFile:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise SarlangError(f"{p}: no such predictions file") from None
    except OSError as exc:
        raise SarlangError(f"{p}: cannot read ({exc.strerror or exc})") from None
    out = PredictionFile(str(p))
    empty = 0
    for no, line_bytes in enumerate(raw.splitlines(), start=1):
        if not line_bytes.strip():
            continue
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            line = line_bytes.decode("utf-8", errors="replace")
            out.problems.append(f"{p}:{no}: not UTF-8, decoded with replacement")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            out.problems.append(f"{p}:{no}: not valid JSON ({exc.msg} at column {exc.colno})")
            out.skipped += 1
            continue
        if not isinstance(obj, dict):
            out.problems.append(f"{p}:{no}: expected a JSON object, got {type(obj).__name__}")
            out.skipped += 1
            continue
        missing = [k for k in ("label", "predict") if not isinstance(obj.get(k), str)]
        if missing:
            out.problems.append(f"{p}:{no}: missing or non-text field(s) {', '.join(missing)}")
            out.skipped += 1
            continue
        question = obj.get("question")
        if not isinstance(question, str) or not question.strip():
            question = question_from_prompt(obj.get("prompt", ""))
        empty += not obj["predict"].strip()
        out.records.append(PredictionRecord(id=str(obj.get("id", no)), label=obj["label"], predict=obj["predict"],
                                            question=question, type=str(obj.get("type") or ""), line=no))
    if empty:
        out.problems.append(f"{p}: {empty} empty prediction(s) kept (they score as wrong / zero)")
    if not out.records:
        shown = "; ".join(out.problems[:3])
        raise SarlangError(f"{p}: no valid prediction lines" + (f" ({shown})" if shown else ""))
    return out
