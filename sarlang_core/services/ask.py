"""Asking a vision-language model about a scene: the one path that `sarlang-cli ask|caption` and
the GUI chat both take.

    request = AskRequest("Where is the ship?", source="region", rect=(100, 50, 200, 100), pipeline=p)
    for piece in ask_scene(backend, session, conversation, request):
        print(piece, end="")
    boxes = conversation.exchanges[-1].boxes          # SceneBox, full-resolution scene pixels
    save_geojson("boxes.geojson", boxes, session.scene)

The request names what the model sees (the whole scene, the viewport or a region, through the
Pipeline, within a pixel budget) and how it answers; ``ask_scene`` renders that image, loads the
backend if needed and streams the answer into the conversation, which puts the boxes of the
answer back on the scene.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RequestError
from ..preprocess.pipeline import Pipeline
from ..progress import CancelToken
from ..vlm.backend import GenerationConfig
from ..vlm.prompts import ACTIONS, Action, action, caption_prompt, vqa_prompt
from .chat import Conversation, SceneBox
from .chat import ask as _stream_answer
from .model_input import DEFAULT_MAX_PIXELS, SOURCES, ModelImage, clip_rect, model_image

__all__ = ["AskRequest", "ACTIONS", "Action", "Conversation", "GenerationConfig", "ModelImage", "SceneBox",
           "SOURCES", "action_request", "ask_scene", "box_line", "check_request", "conversation_boxes",
           "describe_box", "geojson_of", "prompt_for", "save_geojson", "scene_image"]

log = logging.getLogger(__name__)

Rect = tuple[float, float, float, float]


def prompt_for(question: str) -> str:
    """What the model gets for a typed question: the paper's caption prompt as it is, anything
    else inside the paper's VQA template."""
    q = (question or "").strip()
    return q if q == caption_prompt() else vqa_prompt(q)


@dataclass(frozen=True)
class AskRequest:
    """One question about a scene.

    ``question`` is what the transcript and the panel show; ``prompt`` what the model is sent
    (None: ``prompt_for(question)``). ``source`` "scene" | "viewport" | "region"; ``rect``
    (x, y, w, h) in full-resolution scene pixels for a viewport or a region. ``convention``: how
    the model writes boxes (None: from the model family)."""

    question: str
    source: str = "scene"
    rect: Rect | None = None
    pipeline: Pipeline = field(default_factory=Pipeline)
    prompt: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    config: GenerationConfig = field(default_factory=GenerationConfig)
    convention: str | None = None

    def __post_init__(self) -> None:
        if not (self.question or "").strip():
            raise RequestError("the question is empty")
        if self.source not in SOURCES:
            raise RequestError(f"image source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "region" and self.rect is None:
            raise RequestError("draw a region first (R), or ask about the scene")
        if self.source != "scene" and self.rect is None:
            raise RequestError(f"asking about the {self.source} needs its rectangle")
        if int(self.max_pixels) < 1:
            raise RequestError(f"the pixel budget must be at least 1, got {self.max_pixels}")
        if self.rect is not None:
            object.__setattr__(self, "rect", tuple(float(v) for v in self.rect))

    @property
    def model_prompt(self) -> str:
        return self.prompt if self.prompt is not None else prompt_for(self.question)


def check_request(request: AskRequest, scene) -> Rect:
    """The crop the request asks about (x, y, w, h), clipped to ``scene``; RequestError when its
    rectangle lies outside. Cheap: the GUI calls it before it starts the work."""
    if request.source == "scene" or request.rect is None:
        return 0.0, 0.0, float(scene.width), float(scene.height)
    return clip_rect(request.rect, scene.width, scene.height)


def scene_image(session, request: AskRequest, *, cancel: CancelToken | None = None) -> ModelImage:
    """The image the model is sent for ``request``: its part of the scene through its Pipeline."""
    check_request(request, session.scene)
    return model_image(session, request.pipeline, source=request.source, rect=request.rect,
                       max_pixels=request.max_pixels, cancel=cancel)


def ask_scene(backend, session, conversation: Conversation, request: AskRequest, *,
              cancel: CancelToken | None = None,
              on_image: Callable[[ModelImage], None] | None = None) -> Iterator[str]:
    """Render the request's image, load ``backend`` if it is not, and stream the answer; the
    Exchange (answer, boxes in scene pixels) is ``conversation.exchanges[-1]``."""
    img = scene_image(session, request, cancel=cancel)
    if on_image is not None:
        on_image(img)
    if not backend.loaded:
        backend.load(cancel=cancel)
    yield from _stream_answer(backend, conversation, img, request.model_prompt, request.config,
                              convention=request.convention, cancel=cancel)


def action_request(key: str, text: str | None, *, source: str, scene_size: tuple[int, int],
                   view_rect: Rect | None = None, region_rect: Rect | None = None, **fields: Any) -> AskRequest:
    """One of the paper's seven applications as a request. 'refer' names the drawn region in the
    question (in the pixels of the image sent), so the model sees around it: the viewport, or the
    whole scene when the source was the region itself. ``fields``: the other AskRequest fields."""
    from ..vlm.boxes import ModelView, from_scene

    act = action(key)
    width, height = scene_size
    rect = view_rect if source == "viewport" else region_rect if source == "region" else None
    region = None
    if act.needs_region:
        if region_rect is None or region_rect[2] <= 0 or region_rect[3] <= 0:
            raise RequestError("draw a region first (R): the question names it")
        if source == "region":
            source, rect = "scene", None
        crop = (0.0, 0.0, float(width), float(height))
        if source == "viewport":
            if view_rect is None:
                raise RequestError("asking about the viewport needs its rectangle")
            crop = clip_rect(view_rect, width, height)
        x0, y0, w, h = (float(v) for v in region_rect)
        region = from_scene((x0, y0, x0 + w, y0 + h), "sarlang", ModelView(crop, (1, 1)))
    prompt = act.prompt(text or None, region)
    return AskRequest(act.question(text or None, region), source=source, rect=rect, prompt=prompt, **fields)


# -- what an answer found -------------------------------------------------------------------------
def conversation_boxes(conversation: Conversation) -> list:
    """Every box of every exchange, in order."""
    return [b for ex in conversation.exchanges for b in ex.boxes]


def geojson_of(boxes: Iterable[SceneBox], scene) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of ``boxes`` (map coordinates of a georeferenced ``scene``)."""
    from ..vlm.boxes import boxes_to_feature_collection

    return boxes_to_feature_collection([(b.box, b.label, b.convention) for b in boxes], scene)


def save_geojson(path, boxes: Sequence[SceneBox], scene) -> Path:
    """Write ``geojson_of(boxes, scene)`` atomically; returns the path."""
    from ..atomic import write_text_atomic

    return write_text_atomic(Path(path), json.dumps(geojson_of(boxes, scene), indent=2))


def box_line(box: SceneBox) -> str:
    """One line for a terminal: kind, label and the box in scene pixels."""
    x0, y0, x1, y1 = box.box
    return f"{box.kind} {box.label!r}: scene pixels ({x0:.1f}, {y0:.1f}) - ({x1:.1f}, {y1:.1f})"


def describe_box(box: SceneBox, scene=None) -> str:
    """A box's label, pixels and (on a georeferenced scene) its centre on the map and in degrees."""
    x0, y0, x1, y1 = box.box
    text = f"{box.label or box.kind}: pixels ({x0:.0f}, {y0:.0f}) – ({x1:.0f}, {y1:.0f})"
    if scene is not None and scene.georeferenced:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        mx, my = scene.pixel_to_map(cx, cy)
        text += f"\ncentre map {mx:,.1f}, {my:,.1f}"
        ll = scene.pixel_to_lonlat(cx, cy)
        if ll is not None and not any(math.isnan(v) for v in ll):
            text += f"\ncentre {ll[1]:.5f}°, {ll[0]:.5f}°"
    return text
