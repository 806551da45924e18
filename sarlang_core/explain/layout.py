"""Where a model family keeps its visual tokens, and where their grid lies on the image sent.

A layout knows three things per family:
- the module whose output is the visual tokens as the language model receives them, and how to
  read (and replace) those tokens in that output;
- the token grid (rows x cols, row-major) from the processor's outputs;
- the rectangle of the image (pixels of the image given to the processor) that the grid covers.

Qwen2.5-VL / Qwen2-VL: ``model.model.visual``; its ``pooler_output`` is the merger output already
back in raster order (the merger's own output is window-permuted in Qwen2.5-VL: never hook it).
The processor resizes the whole image (smart_resize, sides multiples of 28), so the grid of
(gh/2) x (gw/2) tokens covers the whole image. Pixel patches come in merge blocks: patch k
belongs to token k // 4, at (k % 4) // 2, k % 2 inside its 2 x 2 block.

LLaVA-1.5: ``model.model.multi_modal_projector`` gives (1, N, D) tokens, N = (side / patch)^2 with
the "default" feature strategy (CLS dropped); the CLIP processor resizes the shortest edge and
centre-crops, so the grid covers only the centred square of the image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Tuple

from ..errors import ExplainError

Rect = Tuple[float, float, float, float]   # x0, y0, x1, y1


@dataclass(frozen=True)
class VisualLayout:
    family: str
    module: Callable[[Any], Any]                      # model -> the module to hook
    read: Callable[[Any], Any]                        # module output -> tokens (N, D)
    write: Callable[[Any, Any], Any]                  # (module output, tokens) -> output to return
    pixels_to_patches: Callable[[Any, int, int], Any]  # (pixel-level scores, rows, cols) -> (rows, cols) patches

    def token_grid(self, inputs: Any, processor: Any) -> Tuple[int, int]:
        """(rows, cols) of the visual-token grid for these processor outputs."""
        if self.family in QWEN:
            _t, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
            m = int(processor.image_processor.merge_size)
            return gh // m, gw // m
        side = _llava_side(processor)
        patch = int(getattr(processor, "patch_size", None) or 14)
        return side // patch, side // patch

    def patch_grid(self, inputs: Any, processor: Any) -> Tuple[int, int]:
        """(rows, cols) of the pixel-patch grid (finer than the token grid for Qwen's 2 x 2 merge)."""
        if self.family in QWEN:
            _t, gh, gw = (int(v) for v in inputs["image_grid_thw"][0])
            return gh, gw
        return self.token_grid(inputs, processor)

    def covered_rect(self, processor: Any, width: int, height: int) -> Rect:
        """The part of a ``width`` x ``height`` image that the grid covers, in that image's pixels."""
        if self.family in QWEN:
            return 0.0, 0.0, float(width), float(height)
        ip = processor.image_processor
        side = _llava_side(processor)
        if not getattr(ip, "do_center_crop", False):
            return 0.0, 0.0, float(width), float(height)   # resized straight to the square
        short = _get(ip.size, "shortest_edge") or side
        scale = float(short) / min(width, height)
        rw, rh = width * scale, height * scale
        x0, y0 = (rw - side) / 2.0 / scale, (rh - side) / 2.0 / scale
        return x0, y0, x0 + side / scale, y0 + side / scale


QWEN = ("qwen2_5_vl", "qwen2_vl")


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _llava_side(processor: Any) -> int:
    ip = processor.image_processor
    if getattr(ip, "do_center_crop", False) and ip.crop_size:
        return int(_get(ip.crop_size, "height"))
    return int(_get(ip.size, "height") or _get(ip.size, "shortest_edge"))


def _pooled(output: Any) -> Any:
    return output.pooler_output


def _set_pooled(output: Any, tokens: Any) -> Any:
    output.pooler_output = tokens
    return output


def _qwen_patches(score: Any, rows: int, cols: int) -> Any:
    # score: (n_patches,) in merge-block order -> (rows, cols) raster
    blocks = score.reshape(rows // 2, cols // 2, 2, 2)
    return blocks.permute(0, 2, 1, 3).reshape(rows, cols)


def _llava_patches(score: Any, rows: int, cols: int) -> Any:
    # score: (H, W) pixel map -> its mean over each patch
    import torch

    return torch.nn.functional.adaptive_avg_pool2d(score[None, None], (rows, cols))[0, 0]


def _llava_tokens(output: Any) -> Any:
    return output[0]                      # (1, N, D) -> (N, D)


def _llava_write(output: Any, tokens: Any) -> Any:
    return tokens[None]


LAYOUTS = {
    "qwen2_5_vl": VisualLayout("qwen2_5_vl", lambda m: m.model.visual, _pooled, _set_pooled, _qwen_patches),
    "qwen2_vl": VisualLayout("qwen2_vl", lambda m: m.model.visual, _pooled, _set_pooled, _qwen_patches),
    "llava": VisualLayout("llava", lambda m: m.model.multi_modal_projector, _llava_tokens, _llava_write,
                          _llava_patches),
}


def layout_for(family: str) -> VisualLayout:
    """The layout of ``family``; ExplainError naming it when its visual tokens are not mapped."""
    try:
        return LAYOUTS[family]
    except KeyError:
        raise ExplainError(f"per-word maps are not available for the model family {family!r}: its visual-token "
                           f"layout is not known (known: {', '.join(sorted(LAYOUTS))})") from None
