"""Putting a word's map on the scene, and writing it out.

Chain of coordinates: map grid -> the rectangle of the image sent that the grid covers
(``Explanation.covered``) -> that image's crop of the scene (full-resolution scene pixels) ->
map coordinates through the scene's transform. A map computed for a region therefore lies on
that region and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

import numpy as np

NODATA = -1.0
GEOTIFF_MAX_SIDE = 2048      # the scene-wide raster's longest side (a 16k scene: 8 scene pixels a cell)
COLORMAPS = ("inferno", "jet", "viridis", "turbo", "magma")

Rect = Tuple[float, float, float, float]


@dataclass(frozen=True)
class Placement:
    """Where a grid of ``rows`` x ``cols`` cells lies in scene pixels: (x0, y0, x1, y1)."""

    rows: int
    cols: int
    rect: Rect

    @classmethod
    def of(cls, grid: Tuple[int, int], covered: Rect, image_size: Tuple[int, int], crop: Rect) -> "Placement":
        """``covered``: the grid's rectangle in the sent image (``image_size``), ``crop``: (x, y, w, h)
        of that image in scene pixels."""
        cx, cy, cw, ch = crop
        iw, ih = image_size
        sx, sy = cw / float(iw), ch / float(ih)
        x0, y0, x1, y1 = covered
        return cls(int(grid[0]), int(grid[1]), (cx + x0 * sx, cy + y0 * sy, cx + x1 * sx, cy + y1 * sy))

    @property
    def cell(self) -> Tuple[float, float]:
        x0, y0, x1, y1 = self.rect
        return (x1 - x0) / self.cols, (y1 - y0) / self.rows

    def cell_centre(self, row: int, col: int) -> Tuple[float, float]:
        """Scene pixel (x, y) of a cell's centre."""
        cw, ch = self.cell
        return self.rect[0] + (col + 0.5) * cw, self.rect[1] + (row + 0.5) * ch

    def sample(self, scores: np.ndarray, xs: np.ndarray, ys: np.ndarray, fill: float = NODATA) -> np.ndarray:
        """``scores`` bilinearly at scene pixels (xs x ys, 1-D each): (len(ys), len(xs)), ``fill`` off the grid."""
        x0, y0, x1, y1 = self.rect
        cw, ch = self.cell
        u = np.clip((np.asarray(xs, np.float64) - x0) / cw - 0.5, 0, self.cols - 1)
        v = np.clip((np.asarray(ys, np.float64) - y0) / ch - 0.5, 0, self.rows - 1)
        i0, j0 = np.floor(v).astype(int), np.floor(u).astype(int)
        i1, j1 = np.minimum(i0 + 1, self.rows - 1), np.minimum(j0 + 1, self.cols - 1)
        fv, fu = (v - i0)[:, None], (u - j0)[None, :]
        s = scores.astype(np.float64)
        out = ((1 - fv) * ((1 - fu) * s[np.ix_(i0, j0)] + fu * s[np.ix_(i0, j1)])
               + fv * ((1 - fu) * s[np.ix_(i1, j0)] + fu * s[np.ix_(i1, j1)]))
        inside = ((np.asarray(ys) >= y0) & (np.asarray(ys) < y1))[:, None] & \
                 ((np.asarray(xs) >= x0) & (np.asarray(xs) < x1))[None, :]
        return np.where(inside, out, fill).astype(np.float32)


def colorize(scores: np.ndarray, colormap: str = "inferno", opacity: float = 0.6,
             threshold: float = 0.0) -> np.ndarray:
    """RGBA uint8 of ``scores`` in [0, 1] (NaN / negative: transparent; below ``threshold``: transparent)."""
    from matplotlib import colormaps

    cmap = colormaps[colormap if colormap in COLORMAPS else "inferno"]
    s = np.nan_to_num(np.asarray(scores, np.float32), nan=-1.0)
    rgba = (cmap(np.clip(s, 0, 1)) * 255).astype(np.uint8)
    alpha = np.where((s >= 0) & (s >= threshold), int(round(255 * float(opacity))), 0)
    rgba[..., 3] = alpha.astype(np.uint8)
    return rgba


OVERLAY_MIN_SIDE = 512      # small chips are enlarged so the map and its legend stay readable


def overlay_image(image: Any, placement_in_image: "Placement", scores: np.ndarray, *, colormap: str = "inferno",
                  opacity: float = 0.6, threshold: float = 0.0, title: str = "") -> Any:
    """The image with the map blended on it and a legend strip (colour bar 0-1, ``title``) below."""
    from PIL import Image, ImageDraw

    base = image.convert("RGBA")
    zoom = max(1.0, OVERLAY_MIN_SIDE / float(max(base.size)))
    if zoom > 1.0:
        base = base.resize((round(base.width * zoom), round(base.height * zoom)), Image.Resampling.LANCZOS)
    x0, y0, x1, y1 = placement_in_image.rect
    placed = Placement(placement_in_image.rows, placement_in_image.cols, (x0 * zoom, y0 * zoom, x1 * zoom, y1 * zoom))
    w, h = base.size
    heat = placed.sample(scores, np.arange(w) + 0.5, np.arange(h) + 0.5)
    blended = Image.alpha_composite(base, Image.fromarray(colorize(heat, colormap, opacity, threshold), "RGBA"))
    bar_h = 34
    canvas = Image.new("RGBA", (w, h + bar_h), (13, 14, 16, 255))
    canvas.paste(blended, (0, 0))
    ramp = colorize(np.tile(np.linspace(0, 1, max(2, w // 2), dtype=np.float32), (8, 1)), colormap, 1.0)
    canvas.paste(Image.fromarray(ramp, "RGBA"), (w // 4, h + 5))
    draw = ImageDraw.Draw(canvas)
    draw.text((w // 4 - 12, h + 3), "0", fill=(220, 220, 220, 255))
    draw.text((w // 4 + ramp.shape[1] + 4, h + 3), "1", fill=(220, 220, 220, 255))
    if title:
        draw.text((4, h + 18), title[: max(8, w // 6)], fill=(220, 220, 220, 255))
    return canvas.convert("RGB")


def scene_raster(placement: Placement, scores: np.ndarray, width: int, height: int,
                 max_side: int = GEOTIFF_MAX_SIDE) -> np.ndarray:
    """The map over the whole scene (``width`` x ``height`` pixels), at most ``max_side`` pixels on its
    longest side, NODATA off the grid."""
    factor = max(1.0, max(width, height) / float(max_side))
    out_w, out_h = max(1, int(np.ceil(width / factor))), max(1, int(np.ceil(height / factor)))
    # sampled where the raster's transform (scene size / raster size per axis) puts its pixel centres
    xs = (np.arange(out_w) + 0.5) * (width / out_w)
    ys = (np.arange(out_h) + 0.5) * (height / out_h)
    return placement.sample(scores, xs, ys)


def write_map_geotiff(path: Any, placement: Placement, scores: np.ndarray, scene: Any, *,
                      tags: Optional[dict] = None, overwrite: bool = True) -> Path:
    """A float32 GeoTIFF of the map over the scene's extent, with its CRS and transform
    (scaled to the raster's resolution); NODATA outside the part of the scene the model saw."""
    from affine import Affine

    from ..io.export import write_geotiff_atomic

    raster = scene_raster(placement, scores, int(scene.width), int(scene.height))
    sx, sy = scene.width / float(raster.shape[1]), scene.height / float(raster.shape[0])
    kw: dict = {}
    if scene.gcps and scene.transform == Affine.identity():
        # a scene placed by control points only: the same points, in the raster's coarser pixels
        from rasterio.control import GroundControlPoint

        kw["gcps"] = [GroundControlPoint(row=g.row / sy, col=g.col / sx, x=g.x, y=g.y, z=g.z) for g in scene.gcps]
        kw["gcps_crs"] = scene.gcps_crs
    else:
        kw["transform"] = scene.transform @ Affine.scale(sx, sy)
        kw["crs"] = scene.crs
    return write_geotiff_atomic(path, raster, dtype="float32", nodata=NODATA, tags=tags, overwrite=overwrite, **kw)
