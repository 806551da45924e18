"""Checks on the records of an annotation file: ids, sizes, image paths that must stay inside
the images folder, boxes clipped to their image without round-off noise."""

from __future__ import annotations

import math
import os
from typing import Optional, Tuple, TypeGuard, Union

MAX_SIDE = 1 << 31      # a width/height above this is a broken record, not an image (SQLite INTEGER bound)


def is_key(v) -> bool:
    """An id a record may carry: a whole number or a text (not an object, list, bool or float)."""
    return is_int(v) or isinstance(v, str)


def safe_name(name: str, images_dir=None) -> Optional[str]:
    """Why ``name`` (an image path from an annotation file) may not be used, or None when it may:
    absolute paths, ``..`` parts and (with ``images_dir``) anything that resolves outside
    ``images_dir`` through a symlink are refused, so nothing outside the images folder is read."""
    norm = name.replace("\\", "/")
    if os.path.isabs(name) or norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute path refused (image paths are relative to the images folder)"
    if ".." in norm.split("/"):
        return "path climbs out of the images folder ('..'); refused"
    if images_dir is not None:
        root = os.path.realpath(str(images_dir))
        real = os.path.realpath(os.path.join(root, name))
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            return "path leads outside the images folder (a symlink?); refused"
    return None


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: object) -> TypeGuard[Union[int, float]]:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def clip_box(bbox, width: float, height: float) -> Optional[Tuple[float, float, float, float]]:
    """A COCO ``[x, y, w, h]`` box clipped to a ``width`` x ``height`` image; None when nothing of
    it is inside. A box whose edges lie inside (within round-off: ``x + w`` of float boxes is not
    exact) comes back as the very same tuple, so only boxes really outside are changed."""
    x, y, w, h = (float(v) for v in bbox)
    tol = 1e-6 * max(width, height, 1.0)
    x1, y1 = x + w, y + h
    if x >= -tol and y >= -tol and x1 <= width + tol and y1 <= height + tol:
        return (x, y, w, h)
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x1, float(width)), min(y1, float(height))
    if x1 - x0 <= tol or y1 - y0 <= tol:
        return None
    # an edge that was inside keeps its size exactly; only the sides that crossed are cut
    cw = w if (x0 == x and x + w <= width + tol) else x1 - x0
    ch = h if (y0 == y and y + h <= height + tol) else y1 - y0
    return (x0, y0, cw, ch)


def fmt_box(bb) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in bb) + "]"
