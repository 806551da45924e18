"""The status-bar line under the cursor: pixel, map and lon/lat coordinates, raw and filtered values."""

from __future__ import annotations

import math


def cursor_text(scene, renderer, x: float, y: float) -> str:
    """Values come from the last render (the level on screen), so no read happens on the UI thread."""
    if not (0 <= x < scene.width and 0 <= y < scene.height):
        return ""
    col, row = int(math.floor(x)), int(math.floor(y))
    parts = [f"px {col}, {row}"]
    if scene.georeferenced:
        mx, my = scene.pixel_to_map(col + 0.5, row + 0.5)
        parts.append(f"map {mx:,.2f}, {my:,.2f}")
        ll = scene.pixel_to_lonlat(col + 0.5, row + 0.5)
        if ll is not None:
            parts.append(f"{abs(ll[1]):.5f}°{'N' if ll[1] >= 0 else 'S'} {abs(ll[0]):.5f}°{'E' if ll[0] >= 0 else 'W'}")
    sample = renderer.sample(x, y)
    if sample is not None:
        raw, proc, level = sample
        pipeline = renderer.pipeline
        if math.isnan(raw):
            parts.append("raw: nodata")
        elif pipeline.db:
            parts.append(f"raw {10 ** (raw / 10):.4g} ({raw:.2f} dB)")
        else:
            parts.append(f"raw {raw:.4g}")
        if not math.isnan(proc):
            parts.append(f"filtered {proc:.2f} {pipeline.output_unit}")
        if level:
            parts.append(f"(overview 1:{scene.levels[level].factor})")
    return "   ".join(parts)
