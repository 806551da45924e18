"""The inputs of an exported Qwen2.5-VL in numpy, without torch or transformers (the field build).

What the transformers processor and model compute before the ONNX graphs run, written again on
numpy so that the field variant needs only onnxruntime, tokenizers, jinja2 and PIL:

- ``image_patches``: Qwen's smart resize (PIL, the processor's resample), rescale, normalise, and
  the flat patch layout (merge blocks of 2 x 2 patches, the frame repeated over the temporal patch);
- ``vision_layout``: the vision tower's data-dependent index work (rotary (h, w) per patch, the
  window order of merge blocks and each token's window), which the exported graph takes as inputs;
- ``render_prompt``: the folder's own chat template, rendered with jinja2 as transformers does;
- ``mrope_positions``: M-RoPE's (temporal, height, width) position of every prompt token.

tests/core/test_onnx_inputs.py checks each against transformers on real inputs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..errors import ModelError, RequestError
from .processors import qwen_resize


@dataclass(frozen=True)
class ImageSettings:
    """The image processor's settings, as preprocessor_config.json gives them."""
    min_pixels: int
    max_pixels: int
    patch_size: int = 14
    merge_size: int = 2
    temporal_patch_size: int = 2
    mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073)
    std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711)
    resample: int = 3            # PIL.Image.BICUBIC, as Qwen's processor
    rescale_factor: float = 1 / 255

    @classmethod
    def from_config(cls, cfg: Dict[str, Any]) -> "ImageSettings":
        size = cfg.get("size") or {}
        min_pixels = cfg.get("min_pixels") or size.get("shortest_edge") or 56 * 56
        max_pixels = cfg.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280
        kw = {k: cfg[k] for k in ("patch_size", "merge_size", "temporal_patch_size", "resample", "rescale_factor")
              if cfg.get(k) is not None}
        if cfg.get("image_mean") is not None:
            kw["mean"] = tuple(cfg["image_mean"])
        if cfg.get("image_std") is not None:
            kw["std"] = tuple(cfg["image_std"])
        return cls(int(min_pixels), int(max_pixels), **kw)

    def to_dict(self) -> Dict[str, Any]:
        return {"min_pixels": self.min_pixels, "max_pixels": self.max_pixels, "patch_size": self.patch_size,
                "merge_size": self.merge_size, "temporal_patch_size": self.temporal_patch_size,
                "image_mean": list(self.mean), "image_std": list(self.std), "resample": self.resample,
                "rescale_factor": self.rescale_factor}

    def resized(self, width: int, height: int) -> tuple:
        """(width, height) the image is resized to (sides multiples of patch x merge)."""
        return qwen_resize(width, height, self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)


def as_rgb(image):
    """A PIL RGB image from a PIL image or a uint8 array (SAR quick-looks are often one band)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise RequestError(f"the image must be a PIL image or a uint8 array, got {type(image).__name__}")
    return image.convert("RGB")


def image_patches(image, settings: ImageSettings):
    """(pixel_values (grid_h * grid_w, 3 * T * P * P) float32, (grid_h, grid_w)) of an RGB image."""
    image = as_rgb(image)
    w, h = settings.resized(*image.size)
    if (w, h) != image.size:
        image = image.resize((w, h), resample=settings.resample)
    x = np.asarray(image, dtype=np.float32) * np.float32(settings.rescale_factor)
    x = (x - np.asarray(settings.mean, np.float32)) / np.asarray(settings.std, np.float32)
    p, m, t = settings.patch_size, settings.merge_size, settings.temporal_patch_size
    gh, gw = h // p, w // p
    x = x.transpose(2, 0, 1).reshape(3, gh // m, m, p, gw // m, m, p)
    x = x.transpose(1, 4, 2, 5, 0, 3, 6)                       # (gh/m, gw/m, m, m, C, P, P)
    x = np.broadcast_to(x[:, :, :, :, :, None], (*x.shape[:5], t, p, p))
    return np.ascontiguousarray(x.reshape(gh * gw, 3 * t * p * p), dtype=np.float32), (gh, gw)


@dataclass(frozen=True)
class VisionLayout:
    """The index work of Qwen2.5-VL's vision tower for one image (inputs of the vision graph)."""
    position_ids: np.ndarray     # (N, 2) int64: each patch's (row, column), merge blocks first
    window_index: np.ndarray     # (N / merge^2,) int64: merge blocks in window order
    window_ids: np.ndarray       # (N,) int64: each token's window, in window order


def vision_layout(grid_h: int, grid_w: int, merge: int, window_size: int, patch_size: int) -> VisionLayout:
    """Positions and windows as the vision tower derives them from ``grid_thw`` (one frame)."""
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")
    block = (grid_h // merge, merge, grid_w // merge, merge)
    pos = np.stack([rows.reshape(block).transpose(0, 2, 1, 3).ravel(),
                    cols.reshape(block).transpose(0, 2, 1, 3).ravel()], axis=-1).astype(np.int64)
    lh, lw = grid_h // merge, grid_w // merge
    win = window_size // merge // patch_size                   # merge blocks per window side
    pad_h, pad_w = win - lh % win, win - lw % win              # as the tower: a whole window when it divides
    index = np.full((lh + pad_h, lw + pad_w), -1, dtype=np.int64)
    index[:lh, :lw] = np.arange(lh * lw).reshape(lh, lw)
    nh, nw = (lh + pad_h) // win, (lw + pad_w) // win
    windows = index.reshape(nh, win, nw, win).transpose(0, 2, 1, 3).reshape(nh * nw, win * win)
    order = windows[windows >= 0]
    counts = (windows >= 0).sum(axis=1)
    ids = np.repeat(np.arange(len(counts)), counts * merge * merge)
    return VisionLayout(pos, order.astype(np.int64), ids.astype(np.int64))


@functools.lru_cache(maxsize=8)
def _compiled(template: str):
    """The template compiled as transformers compiles it (sandboxed jinja2, trim_blocks,
    lstrip_blocks, ``raise_exception`` and a ``tojson`` that keeps non-ASCII); compiling costs
    ~10 ms, so once per template."""
    import json

    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(
        x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(template)
    except TemplateError as exc:
        raise ModelError(f"the model's chat template does not compile: {exc}") from exc


def render_prompt(template: str, messages: List[dict], *, add_generation_prompt: bool = True) -> str:
    """The chat template rendered as transformers renders it."""
    from jinja2 import TemplateError

    try:
        return _compiled(template).render(messages=messages, add_generation_prompt=add_generation_prompt)
    except TemplateError as exc:
        raise ModelError(f"the model's chat template failed: {exc}") from exc


def mrope_positions(input_ids: np.ndarray, image_token_id: int, grid: Optional[tuple], merge: int):
    """((3, 1, L) int64 positions, delta) for one prompt with at most one image: text counts up on
    all three axes; the image's tokens take (start, start + row, start + column); text after it
    resumes at start + max(rows, columns). ``delta`` turns a later token's index into its position."""
    ids = np.asarray(input_ids).reshape(-1)
    image = np.flatnonzero(ids == image_token_id)
    if grid is None or not len(image):
        pos = np.broadcast_to(np.arange(len(ids)), (3, len(ids)))
        return np.ascontiguousarray(pos[:, None, :], dtype=np.int64), 0
    lh, lw = grid[0] // merge, grid[1] // merge
    start, n = int(image[0]), len(image)
    if n != lh * lw or image[-1] - start + 1 != n:
        raise ModelError(f"the prompt holds {n} image tokens where the image needs {lh * lw} in one run")
    pos = np.zeros((3, len(ids)), dtype=np.int64)
    pos[:, :start] = np.arange(start)
    rows, cols = np.meshgrid(np.arange(lh), np.arange(lw), indexing="ij")
    pos[0, start:start + n] = start
    pos[1, start:start + n] = start + rows.ravel()
    pos[2, start:start + n] = start + cols.ravel()
    after = start + max(lh, lw)
    pos[:, start + n:] = after + np.arange(len(ids) - start - n)
    delta = int(pos.max()) + 1 - len(ids)
    return pos[:, None, :], delta
