"""Argument checks shared by the numba and torch paths (bounds come from ``params``)."""

from __future__ import annotations

import numpy as np

from sarlang_core.errors import PipelineError

from .params import DAMPING, LOOKS, WINDOW


def check_window(window) -> int:
    return WINDOW.check(window)


def check_looks(looks) -> float:
    return LOOKS.check(looks)


def check_damping(damping) -> float:
    return DAMPING.check(damping)


def check_band(band) -> np.ndarray:
    arr = np.asarray(band)
    if arr.ndim != 2:
        raise PipelineError(f"a speckle filter needs a 2-D band, got an array of shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise PipelineError("complex band: filter the intensity I^2 + Q^2 (np.abs(band)**2)")
    if arr.dtype.kind not in "fiub":
        raise PipelineError(f"a speckle filter needs a real numeric band, got dtype {arr.dtype}")
    if not arr.dtype.isnative:  # e.g. big-endian data: the kernels want native floats
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def output_dtype(arr: np.ndarray):
    return np.float64 if arr.dtype == np.float64 else np.float32


def nodata_scalar(arr: np.ndarray, nodata):
    """nodata as a scalar of the band's dtype, or None when no pixel can equal it."""
    if nodata is None:
        return None
    try:
        nd = arr.dtype.type(nodata)
    except (OverflowError, ValueError, TypeError):
        return None
    if nd != nodata or nd != nd:  # not representable in an integer band, or NaN (invalid anyway)
        return None
    return nd


def prepare(band, nodata):
    """Kernel inputs: (source, has_nodata, nodata scalar, output pre-filled with the band).

    Float bands go to the kernels as they are (validity is tested there, in the band's dtype);
    other bands become float32 here (their output type) with nodata pixels set to NaN, so each
    kernel is compiled for two signatures only.
    """
    arr = check_band(band)
    out = np.array(arr, dtype=output_dtype(arr), order="C", copy=True)
    nd = nodata_scalar(arr, nodata)
    if arr.dtype in (np.float32, np.float64):
        src = np.ascontiguousarray(arr)
        return src, nd is not None, nd if nd is not None else src.dtype.type(0), out
    src = out.copy()
    if nd is not None:
        src[arr == nd] = np.nan
    return src, False, np.float32(0), out
