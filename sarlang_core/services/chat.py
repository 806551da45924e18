"""One conversation per scene with a vision-language model, reproducible from its transcript.

Each exchange records the question, the streamed answer, the image it was about (source and
crop), the Pipeline, the backend's identity and the generation settings; boxes and position
words in the answer are put back on the scene in full-resolution pixels.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..errors import CancelledError, RequestError
from ..preprocess.pipeline import Pipeline
from ..progress import CancelToken
from ..urls import redact_text, redact_url
from ..vlm.backend import ChatTurn, GenerationConfig, check_turns
from .model_input import ModelImage

log = logging.getLogger(__name__)

TRANSCRIPT_SCHEMA = "sarlang.transcript/1"


@dataclass
class SceneBox:
    """A box from an answer, on the scene: full-resolution pixels (x0, y0, x1, y1)."""

    box: Tuple[float, float, float, float]
    label: str
    convention: str
    kind: str = "box"           # "box" | "position"


@dataclass
class Exchange:
    question: str
    answer: str = ""
    source: str = "scene"
    crop: Tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    input_size: Tuple[int, int] = (0, 0)
    backend: Dict[str, Any] = field(default_factory=dict)
    config: Dict[str, Any] = field(default_factory=dict)
    started: str = ""
    finished: str = ""
    stopped: bool = False
    error: str = ""
    boxes: List[SceneBox] = field(default_factory=list)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class Conversation:
    """The exchanges about one scene under one Pipeline, in order."""

    def __init__(self, scene_path: str, pipeline: Pipeline):
        self.scene_path = str(scene_path)
        self.pipeline = pipeline
        self.exchanges: List[Exchange] = []

    def history_for(self, crop, source: str) -> List[ChatTurn]:
        """Earlier turns about the same image: a follow-up keeps its context, a new region does not."""
        turns: List[ChatTurn] = []
        for ex in self.exchanges:
            if ex.crop == tuple(crop) and ex.source == source and ex.answer and not ex.error:
                turns += [ChatTurn("user", ex.question), ChatTurn("assistant", ex.answer)]
        return turns

    # -- transcripts ---------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        return {"schema": TRANSCRIPT_SCHEMA, "scene": self.scene_path, "pipeline": self.pipeline.to_dict(),
                "exchanges": [asdict(e) for e in self.exchanges]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        lines = [f"# Conversation about `{Path(self.scene_path).name}`", "",
                 f"- Scene: `{self.scene_path}`", f"- Pipeline: {self.pipeline.describe()}", "",
                 "```json", self.pipeline.to_json(), "```", ""]
        for i, ex in enumerate(self.exchanges, 1):
            ident = ex.backend
            who = ident.get("model", "?") + (f" + adapter {ident['adapter']}" if ident.get("adapter") else "")
            where = f" @ {ident['endpoint']}" if ident.get("endpoint") else ""
            x, y, w, h = ex.crop
            lines += [f"## {i}. {ex.question}", "",
                      f"*{ex.source} [{x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}] → model input "
                      f"{ex.input_size[0]}×{ex.input_size[1]} · {ident.get('backend', '?')}: {who}{where} · "
                      f"{json.dumps(ex.config)} · {ex.started}*", ""]
            lines.append(ex.answer if ex.answer else "_(no answer)_")
            if ex.stopped:
                lines.append("\n_(stopped by the user)_")
            if ex.error:
                lines.append(f"\n**Error:** {ex.error}")
            for b in ex.boxes:
                x0, y0, x1, y1 = b.box
                lines.append(f"- {b.kind} `{b.label}`: scene pixels ({x0:.1f}, {y0:.1f}) – ({x1:.1f}, {y1:.1f})")
            lines.append("")
        return "\n".join(lines)

    def save(self, path) -> Path:
        """Markdown for .md, JSON otherwise; written atomically."""
        path = Path(path)
        text = self.to_markdown() if path.suffix.lower() in (".md", ".markdown") else self.to_json()
        from ..atomic import write_text_atomic

        return write_text_atomic(path, text)


def ask(backend, conversation: Conversation, model_img: ModelImage, question: str,
        config: GenerationConfig = GenerationConfig(), *, convention: Optional[str] = None,
        cancel: Optional[CancelToken] = None) -> Iterator[str]:
    """Stream the answer to ``question`` about ``model_img``; the Exchange is appended at once and
    completed as pieces arrive (so a stop or an error keeps what was said)."""
    question = (question or "").strip()
    if not question:
        raise RequestError("the question is empty")
    turns = conversation.history_for(model_img.crop, model_img.source) + [ChatTurn("user", question)]
    check_turns(turns)
    ex = Exchange(question=question, source=model_img.source, crop=model_img.crop,
                  input_size=tuple(backend.model_input_size(*model_img.image.size)),
                  backend=_shown(backend.identity()), config=config.to_dict(), started=_now())
    conversation.exchanges.append(ex)
    try:
        for piece in backend.stream(model_img.image, turns, config, cancel=cancel):
            ex.answer += piece
            yield piece
        ex.stopped = bool(cancel is not None and cancel.cancelled)
    except CancelledError:
        ex.stopped = True
    except GeneratorExit:   # the reader stopped before the answer ended (the user's Stop between pieces)
        ex.stopped = True
        raise
    except Exception as exc:
        ex.error = redact_text(str(exc))
        raise
    finally:
        ex.finished = _now()
        ex.boxes = answer_boxes(ex.answer, model_img, ex.input_size,
                                convention or default_convention(ex.backend))


def _shown(identity: Dict[str, Any]) -> Dict[str, Any]:
    """A backend's identity as a transcript may hold it: the endpoint without URL credentials."""
    if identity.get("endpoint"):
        identity = {**identity, "endpoint": redact_url(identity["endpoint"])}
    return identity


def default_convention(identity: Dict[str, Any]) -> str:
    """How a model family writes boxes (FIELD_NOTES): Qwen2.5-VL absolute input pixels, Qwen2-VL
    0-1000; a served model is assumed to be a fine-tuned Qwen2.5-VL unless the user says otherwise."""
    family = str(identity.get("family", "")).lower()
    if family == "qwen2_vl":
        return "qwen2-vl"
    return "qwen2.5-vl"


def answer_boxes(answer: str, model_img: ModelImage, input_size, convention: str) -> List[SceneBox]:
    """Boxes and position words of an answer, in scene pixels."""
    from ..vlm.boxes import ModelView, parse_answer, position_region, to_scene

    view = ModelView(crop=model_img.crop, input_size=tuple(input_size))
    parsed = parse_answer(answer)
    out: List[SceneBox] = []
    for pb in parsed.boxes:
        # bbox_2d JSON is written by Qwen2.5-VL (input pixels) and Qwen3-VL (0-1000) alike: the
        # model family decides; other syntaxes (GeoChat, <box>, [x, y, w, h]) name their own.
        conv = convention if pb.convention_hint in ("", None, "qwen2.5-vl") else pb.convention_hint
        try:
            box = to_scene(pb.coords, conv, view)
        except Exception:  # a malformed box in free text is skipped, never fatal
            log.debug("skipped a box the answer wrote as %r", pb.coords, exc_info=True)
            continue
        x0, y0, x1, y1 = box
        out.append(SceneBox((float(x0), float(y0), float(x1), float(y1)), pb.label or "", conv))
    x, y, w, h = model_img.crop
    for word in parsed.positions:
        x0, y0, x1, y1 = position_region(word, w, h)
        out.append(SceneBox((x + x0, y + y0, x + x1, y + y1), word, "position", kind="position"))
    return out
