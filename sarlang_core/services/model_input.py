"""What the model sees: the scene after the current Pipeline, as one RGB image.

The whole scene downsampled to the model's pixel budget, the current viewport, or a drawn
region; the exact crop (full-resolution scene pixels) travels with the image so boxes in the
answer can be put back on the scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from PIL import Image

from ..errors import RequestError
from ..io import Window
from ..preprocess.pipeline import Pipeline, StretchSpec

SOURCES = ("scene", "viewport", "region")
DEFAULT_MAX_PIXELS = 1024 * 1024
STRIP_PIXELS = 4 << 20    # a level too large for the model (no overviews) is rendered in strips this size


@dataclass(frozen=True)
class ModelImage:
    image: Image.Image                          # RGB, what is sent to the model
    crop: Tuple[float, float, float, float]     # (x, y, w, h) in full-resolution scene pixels
    source: str                                 # "scene" | "viewport" | "region"
    level: int                                  # overview level it was rendered from

    def thumbnail(self, size: int = 160) -> Image.Image:
        thumb = self.image.copy()
        thumb.thumbnail((size, size))
        return thumb


def clip_rect(rect, width: int, height: int) -> Tuple[float, float, float, float]:
    """The part of (x, y, w, h) inside the scene; RequestError when nothing is."""
    x, y, w, h = (float(v) for v in rect)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise RequestError(f"the region [{x:.1f}, {y:.1f}, {w:.1f}, {h:.1f}] is outside the scene "
                           f"({width} x {height} pixels)")
    return x0, y0, x1 - x0, y1 - y0


def model_image(session, pipeline: Pipeline, *, source: str = "scene", rect=None,
                max_pixels: int = DEFAULT_MAX_PIXELS, cancel=None) -> ModelImage:
    """Render the chosen part of the scene through ``pipeline`` into at most ``max_pixels``."""
    scene = session.scene
    if source not in SOURCES:
        raise RequestError(f"image source must be one of {SOURCES}, got {source!r}")
    if source == "scene":
        crop = (0.0, 0.0, float(scene.width), float(scene.height))
    elif rect is None:
        raise RequestError(f"asking about the {source} needs its rectangle")
    else:
        crop = clip_rect(rect, scene.width, scene.height)
    x, y, w, h = crop
    level = _level_for(scene, w * h, max_pixels)
    f = scene.levels[level].factor
    lv = scene.levels[level]
    c0, r0 = int(math.floor(x / f)), int(math.floor(y / f))
    c1, r1 = min(lv.width, int(math.ceil((x + w) / f))), min(lv.height, int(math.ceil((y + h) / f)))
    window = Window(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
    # Without a stretch the model still needs 8-bit pixels: use the paper's default stretch.
    pipe = pipeline if pipeline.stretch is not None else pipeline.with_(stretch=StretchSpec())
    # No overview coarse enough (most SAR products have none; with overviews the level has under
    # 4x the budget): render every step-th pixel in strips, keeping at least the budget for the
    # resize below, instead of the whole window at once.
    step = int(math.sqrt(window.width * window.height / float(max_pixels)))
    if window.width * window.height > 4 * max_pixels and step >= 2:
        img = Image.fromarray(strided_image(session, pipe, level, window, step, cancel), mode="L")
    else:
        img = Image.fromarray(session.render(pipe, level, window, cancel).image, mode="L")
    scale = min(1.0, math.sqrt(max_pixels / float(img.width * img.height)))
    if scale < 1.0:
        img = img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))), Image.Resampling.LANCZOS)
    # the crop actually rendered (window edges snap to the level's pixel grid)
    crop = (c0 * f, r0 * f, min(scene.width, c1 * f) - c0 * f, min(scene.height, r1 * f) - r0 * f)
    x, y, w, h = crop
    return ModelImage(img.convert("RGB"), (float(x), float(y), float(w), float(h)), source, level)


def strided_image(session, pipeline: Pipeline, level: int, window: Window, step: int, cancel=None) -> np.ndarray:
    """Every ``step``-th pixel of ``window``'s 8-bit image, rendered strip by strip (filtered at the
    level's resolution, stretched with the scene-wide limits), so memory is set by STRIP_PIXELS."""
    rows = max(step, STRIP_PIXELS // max(1, window.width) // step * step)   # a multiple of step: strides align
    parts = []
    for r in range(0, window.height, rows):
        strip = Window(window.col_off, window.row_off + r, window.width, min(rows, window.height - r))
        parts.append(session.render(pipeline, level, strip, cancel).image[::step, ::step])
    return np.concatenate(parts)


def _level_for(scene, crop_pixels: float, max_pixels: int) -> int:
    """The coarsest level that still has at least the pixels the model will get (or level 0)."""
    best = 0
    for lv in scene.levels:
        if crop_pixels / (lv.factor ** 2) >= min(max_pixels, crop_pixels):
            best = lv.index
    return best


def render_file(path, pipeline) -> Image.Image:
    """A whole image file at full resolution through ``pipeline`` as 8-bit 'L' (what exports,
    training sets and benchmarks give a model); ``pipeline`` None: the file as stored, in RGB."""
    from .scene_session import SceneSession

    if pipeline is None:
        with Image.open(path) as im:
            return im.convert("RGB")
    session = SceneSession.open(path)
    try:
        scene = session.scene
        return Image.fromarray(session.render(pipeline, 0, Window(0, 0, scene.width, scene.height)).image)
    finally:
        session.close()
