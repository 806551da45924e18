"""Pure per-pixel steps of the chain: amplitude/intensity conversion, dB, linear stretch.

Arrays are float32 with NaN marking invalid pixels (nodata, NaN, Inf in the source).
"""

from __future__ import annotations

import numpy as np


def resolve_quantity(pipeline_quantity: str, scene_quantity: str, dtype: str, is_complex: bool) -> str:
    """What the band read from the scene holds.

    'auto' trusts the scene's metadata; without it, complex data is read as intensity, integer
    data (GRD digital numbers, 8-bit chips) is taken as amplitude, and float data as intensity
    (calibrated sigma0/gamma0 products are usually stored as linear intensity).
    """
    if pipeline_quantity != "auto":
        return pipeline_quantity
    if is_complex:
        return "intensity"
    if scene_quantity in ("intensity", "amplitude", "db"):
        return scene_quantity
    return "intensity" if dtype.startswith("float") else "amplitude"


def to_domain(band: np.ndarray, quantity: str, domain: str) -> np.ndarray:
    """Convert the band from what it holds to the domain the filter runs in.

    dB values go back to linear intensity first: the speckle filters' statistics (local mean and
    variance under multiplicative noise, REFINED_LEE.md) hold for linear data only, and the
    chain's own 10 log10 then gives dB again.
    """
    band = np.asarray(band, dtype=np.float32)
    if quantity == "db":
        band = np.power(np.float32(10.0), band / np.float32(10.0), dtype=np.float32)  # NaN stays NaN
        quantity = "intensity"
    if quantity == domain:
        return band
    if quantity == "amplitude":  # -> intensity
        return np.square(band)
    return np.sqrt(np.maximum(band, 0.0, where=~np.isnan(band), out=band.copy()))  # intensity -> amplitude


def to_db(values: np.ndarray, domain: str, floor_db: float) -> np.ndarray:
    """10 log10 of intensity, with zeros and negatives floored at ``floor_db``; NaN stays NaN."""
    values = np.asarray(values, dtype=np.float32)
    intensity = values if domain == "intensity" else np.square(values)
    floor = np.float32(10.0 ** (floor_db / 10.0))
    with np.errstate(invalid="ignore"):
        clipped = np.maximum(intensity, floor)  # NaN propagates through np.maximum
    out = np.log10(clipped)
    out *= np.float32(10.0)
    return out


def output_values(filtered: np.ndarray, domain: str, db: bool, floor_db: float) -> np.ndarray:
    """The chain's values before the stretch: dB when asked, else the filtered linear band."""
    return to_db(filtered, domain, floor_db) if db else np.asarray(filtered, dtype=np.float32)


NODATA_U8 = 0   # the 8-bit value of nodata: valid pixels are stretched to 1..255 and never take it


def stretch_to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly to 1..255 (clipped); invalid (NaN) pixels become NODATA_U8 (0).

    Valid pixels never take 0, so 8-bit output keeps nodata distinguishable (exports declare
    nodata=0, views and PNGs make it transparent) at the cost of one grey level.
    """
    values = np.asarray(values, dtype=np.float32)
    span = float(hi) - float(lo)
    scale = np.float32(254.0 / span) if span > 0 else np.float32(0.0)
    out = values - np.float32(lo)
    out *= scale
    # fmax/fmin return the number when the other operand is NaN: clipping and NaN -> 0 in one go
    np.fmax(out, np.float32(0.0), out=out)
    np.fmin(out, np.float32(254.0), out=out)
    out += np.float32(1.5)
    image = out.astype(np.uint8)
    image[np.isnan(values)] = NODATA_U8
    return image


def valid_mask(values: np.ndarray) -> np.ndarray:
    return ~np.isnan(values)
