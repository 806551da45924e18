"""Per-word maps of an answer about a scene: the one path that `sarlang-cli explain` and the GUI
both take.

    request = ExplainRequest(AskRequest("Where is the ship?", source="region", rect=(100, 50, 200, 100)))
    result = explain_scene(backend, session, request)            # generates the answer, then the maps
    for w in result.words:
        print(w.text, w.peak, result.peak_scene(w))             # scene pixels of the word's peak
    write_outputs(result, session.scene, "out/")                 # words.json, a GeoTIFF and a PNG per word

The image is the one the chat sends for the same request (the Pipeline, the source, the pixel
budget); the answer is generated greedily or given (teacher forcing: "where is the 'bridge' in
this ground-truth caption?"). With a LoRA adapter, ``adapter=False`` gives the base model's maps
for the same answer, so base and fine-tuned models compare word for word.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExplainError, RequestError
from ..explain import METHODS, Explanation, WordMap, explain_answer
from ..explain.hooks import adapter_enabled
from ..explain.maps import COLORMAPS, NODATA, Placement, colorize, overlay_image, write_map_geotiff
from ..explain.words import WordSpan, text_words
from ..progress import CancelToken, ProgressCallback, check, report
from ..vlm.backend import ChatTurn
from .ask import AskRequest, check_request, scene_image
from .model_input import ModelImage

__all__ = ["COLORMAPS", "EXPLAIN_SCHEMA", "ExplainRequest", "METHOD_CHOICES", "NODATA", "Placement", "SceneExplanation",
           "WordMap", "WordSpan", "colorize", "explain_exchange", "explain_scene", "explanation_unavailable",
           "text_words", "write_outputs"]

EXPLAIN_SCHEMA = "sarlang.explain/1"
METHOD_CHOICES = [(m.name, m.label) for m in METHODS.values()]
SERVED_NOTE = ("a served model (OpenAI-compatible endpoint) gives no gradients or attention: per-word maps need "
               "a local model folder (load it under Model folder… or from the registry)")

ONNX_NOTE = ("an ONNX export runs inference only, with no gradients: per-word maps need the model folder it was "
             "exported from, loaded with torch (the full install)")


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: the question and image (``ask``), the answer (None: generate it greedily),
    the method, which words (None: all), and whether a loaded adapter is used (False: the base
    model's maps). ``history``: earlier turns about the same image, as the chat sent them."""

    ask: AskRequest
    answer: str | None = None
    method: str = "gradcam"
    words: tuple[str, ...] | None = None
    adapter: bool = True
    history: tuple[ChatTurn, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ExplainError(f"unknown explanation method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.answer is not None and not self.answer.strip():
            raise ExplainError("the answer is empty: there is nothing to explain")
        if self.words is not None:
            object.__setattr__(self, "words", tuple(w.strip() for w in self.words if w.strip()) or None)


@dataclass(frozen=True)
class SceneExplanation:
    """An Explanation placed on the scene: maps in scene pixels (``placement``) and map coordinates."""

    explanation: Explanation
    image: ModelImage
    placement: Placement                 # the grid in full-resolution scene pixels
    question: str
    model: dict[str, Any]
    adapter_used: bool | None            # None: no adapter loaded
    generated: bool

    @property
    def answer(self) -> str:
        return self.explanation.answer

    @property
    def method(self) -> str:
        return self.explanation.method

    @property
    def words(self) -> list[WordMap]:
        return self.explanation.words

    def word(self, key: Any) -> WordMap:
        return self.explanation.word(key)

    def peak_scene(self, w: WordMap) -> tuple[float, float]:
        """Scene pixel (x, y) at the centre of the word's peak cell."""
        return self.placement.cell_centre(*w.peak_cell)

    def image_placement(self) -> Placement:
        """The grid in the pixels of the image that was sent (for overlays on that image)."""
        e = self.explanation
        return Placement(e.grid[0], e.grid[1], e.covered)

    def record(self, w: WordMap, scene: Any) -> dict[str, Any]:
        top = max((m.peak for m in self.words), default=0.0)
        x, y = self.peak_scene(w)
        rec: dict[str, Any] = {
            "index": w.word.index, "text": w.text, "content": w.word.content, "chars": list(w.word.chars),
            "tokens": list(w.word.tokens), "peak": w.peak, "relative_peak": w.peak / top if top > 0 else 0.0,
            "peak_cell": list(w.peak_cell), "peak_pixel": [x, y], "peak_map": None, "peak_lonlat": None}
        if scene is not None and scene.georeferenced:
            rec["peak_map"] = list(scene.pixel_to_map(x, y))
            ll = scene.pixel_to_lonlat(x, y)
            rec["peak_lonlat"] = list(ll) if ll is not None else None
        return rec

    def to_dict(self, scene: Any = None) -> dict[str, Any]:
        e = self.explanation
        return {"schema": EXPLAIN_SCHEMA, "scene": str(getattr(scene, "path", "")), "question": self.question,
                "answer": e.answer, "generated": self.generated, "method": e.method, "model": self.model,
                "adapter_used": self.adapter_used, "source": self.image.source, "crop": list(self.image.crop),
                "image_size": list(e.image_size), "grid": list(e.grid), "grid_rect": list(self.placement.rect),
                "crs": scene.crs_wkt if scene is not None and scene.georeferenced else None,
                "words": [self.record(w, scene) for w in self.words]}

    def save_geotiff(self, path: Any, key: Any, scene: Any, *, overwrite: bool = True) -> Path:
        w = self.word(key)
        tags = {"sarlang_word": w.text, "sarlang_method": self.method, "sarlang_answer": self.answer[:2000],
                "sarlang_question": self.question[:2000], "sarlang_peak": f"{w.peak:.6g}"}
        return write_map_geotiff(path, self.placement, w.scores, scene, tags=tags, overwrite=overwrite)

    def overlay(self, key: Any, *, colormap: str = "inferno", opacity: float = 0.6, threshold: float = 0.0):
        """The image sent to the model with the word's map on it and a legend (a PIL image)."""
        w = self.word(key)
        title = f"'{w.text}' · {dict(METHOD_CHOICES)[self.method]} · peak {w.peak:.3g}"
        return overlay_image(self.image.image, self.image_placement(), w.scores, colormap=colormap, opacity=opacity,
                             threshold=threshold, title=title)

    def save_overlay_png(self, path: Any, key: Any, **style: Any) -> Path:
        import io

        from ..atomic import write_bytes_atomic

        buf = io.BytesIO()
        self.overlay(key, **style).save(buf, format="PNG")
        return write_bytes_atomic(Path(path), buf.getvalue())


def explanation_unavailable(backend: Any) -> str | None:
    """Why ``backend`` cannot give per-word maps (None when it can)."""
    if backend is None:
        return "load a model first"
    if getattr(backend, "manifest", None) is not None:     # OnnxBackend: inference graphs only
        return ONNX_NOTE
    if not hasattr(backend, "prepare_inputs") or not hasattr(backend, "generate_ids"):
        return SERVED_NOTE
    from ..explain import LAYOUTS

    family = getattr(backend, "family", None)
    if family not in LAYOUTS:
        return (f"per-word maps are not available for the model family {family!r}: its visual-token layout is "
                f"not known (known: {', '.join(sorted(LAYOUTS))})")
    return None


def _answer_ids(backend: Any, inputs: Any, request: ExplainRequest, cancel: CancelToken | None) -> tuple[list, bool]:
    tok = backend.processor.tokenizer
    if request.answer is not None:
        return list(tok(request.answer, add_special_tokens=False)["input_ids"]), False
    with adapter_enabled(backend.model, request.adapter):
        out = backend.generate_ids(inputs, request.ask.config, cancel)
    ids = out[0, inputs["input_ids"].shape[1]:].tolist()
    special = set(tok.all_special_ids)
    while ids and ids[-1] in special:
        ids.pop()
    return ids, True


def explain_scene(backend: Any, session: Any, request: ExplainRequest, *, progress: ProgressCallback | None = None,
                  cancel: CancelToken | None = None) -> SceneExplanation:
    """The per-word maps of the answer to ``request`` about ``session``'s scene, on the scene."""
    reason = explanation_unavailable(backend)
    if reason:
        raise ExplainError(reason)
    check_request(request.ask, session.scene)
    check(cancel)
    report(progress, "image", 0, 1, "rendering the image the model sees")
    img = scene_image(session, request.ask, cancel=cancel)
    if not backend.loaded:
        backend.load(cancel=cancel)
    turns = [*request.history, ChatTurn("user", request.ask.model_prompt)]
    inputs = backend.prepare_inputs(img.image, turns)
    if request.answer is None:
        report(progress, "answer", 0, 1, "generating the answer")
    ids, generated = _answer_ids(backend, inputs, request, cancel)
    if not ids:
        raise ExplainError("the model gave an empty answer: there is nothing to explain")
    has_adapter = getattr(backend, "adapter_path", None) is not None
    with adapter_enabled(backend.model, request.adapter):
        result = explain_answer(backend.model, backend.processor, backend.family, inputs, ids,
                                image_size=img.image.size, method_name=request.method, words=request.words,
                                progress=progress, cancel=cancel)
    placement = Placement.of(result.grid, result.covered, img.image.size, img.crop)
    return SceneExplanation(result, img, placement, request.ask.model_prompt, backend.identity(),
                            (request.adapter if has_adapter else None), generated)


def explain_exchange(backend: Any, session: Any, conversation: Any, index: int, *, method: str = "gradcam",
                     words: Sequence[str] | None = None, adapter: bool = True, max_pixels: int | None = None,
                     progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> SceneExplanation:
    """The maps of exchange ``index`` of a chat ``conversation``: its prompt, image and answer as they
    were (earlier turns about the same image included), teacher-forced on the answer shown."""
    try:
        ex = conversation.exchanges[index]
    except IndexError:
        raise RequestError(f"the conversation has no answer {index + 1}") from None
    if not ex.answer.strip():
        raise ExplainError("this answer is empty: there is nothing to explain")
    history: list[ChatTurn] = []
    for earlier in conversation.exchanges[:index]:
        if earlier.crop == ex.crop and earlier.source == ex.source and earlier.answer and not earlier.error:
            history += [ChatTurn("user", earlier.question), ChatTurn("assistant", earlier.answer)]
    fields: dict[str, Any] = {"pipeline": conversation.pipeline}
    if max_pixels is not None:
        fields["max_pixels"] = max_pixels
    rect = None if ex.source == "scene" else ex.crop
    ask = AskRequest(ex.question, source=ex.source, rect=rect, prompt=ex.question, **fields)
    request = ExplainRequest(ask, answer=ex.answer, method=method, words=tuple(words) if words else None,
                             adapter=adapter, history=tuple(history))
    return explain_scene(backend, session, request, progress=progress, cancel=cancel)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "word"


def write_outputs(result: SceneExplanation, scene: Any, out_dir: Any, *, colormap: str = "inferno",
                  opacity: float = 0.6, threshold: float = 0.0) -> Path:
    """``out_dir``/words.json (each word: text, token span, peak score, peak in scene pixels and map
    coordinates, its files), a float32 GeoTIFF and a PNG overlay per word. Returns words.json."""
    from ..atomic import write_text_atomic

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplainError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from exc
    doc = result.to_dict(scene)
    for rec, w in zip(doc["words"], result.words):
        stem = f"{w.word.index:02d}_{_slug(w.text)}"
        result.save_geotiff(out / f"{stem}.tif", w.word.index, scene)
        result.save_overlay_png(out / f"{stem}.png", w.word.index, colormap=colormap, opacity=opacity,
                                threshold=threshold)
        rec["geotiff"], rec["png"] = f"{stem}.tif", f"{stem}.png"
    doc["style"] = {"colormap": colormap, "opacity": opacity, "threshold": threshold}
    return write_text_atomic(out / "words.json", json.dumps(doc, indent=2, ensure_ascii=False))
