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
        else:
            quantity = renderer.session.filter_key(pipeline).quantity
            parts.extend(raw_parts(raw, pipeline, quantity, scene, level))
        if not math.isnan(proc):
            parts.append(f"filtered {proc:.2f} {pipeline.output_unit}")
        if level:
            parts.append(f"(overview 1:{scene.levels[level].factor})")
    return "   ".join(parts)


def raw_parts(value: float, pipeline, quantity: str, scene, level: int) -> list[str]:
    """The unfiltered render value at a pixel, as the stored sample and the intensity derived from it.

    ``value`` is in the pipeline's output unit (dB, or linear in the filter domain); ``quantity`` is
    what the band stores. 8-bit chips store amplitude, so a pixel of 168 has intensity 168².
    """
    floored = pipeline.db and value <= pipeline.db_floor
    if pipeline.db:
        intensity = 0.0 if floored else 10.0 ** (value / 10.0)
    else:
        intensity = value if pipeline.domain == "intensity" else value * value
    db = ""
    if floored:
        db = f" (≤ {pipeline.db_floor:g} dB floor)"
    elif pipeline.db:
        db = f" ({value:.2f} dB)"
    if scene.is_complex:      # the stored sample is complex: show its modulus
        return [f"|z| {_num(math.sqrt(max(intensity, 0.0)))}", f"intensity {_num(intensity)}{db}"]
    if quantity == "amplitude":
        stored = math.sqrt(max(intensity, 0.0))
        exact = level == 0 and _is_integer(scene.dtype)     # an overview pixel is an average
        return [f"raw {_num(stored, exact)}", f"intensity {_num(intensity)}{db}"]
    return [f"raw {_num(intensity)} intensity{db}"]


def _is_integer(dtype: str) -> bool:
    return str(dtype).startswith(("uint", "int"))


def _num(value: float, exact: bool = False) -> str:
    return f"{round(value):d}" if exact else f"{value:.4g}"
