"""Overview arithmetic shared by the in-memory pyramid and the overview cache builder.

Averages ignore NaN (invalid pixels) and are exact block means of the full-resolution pixels:
each level keeps sums and counts and the next level sums those, so 'mean of means' errors at
NaN holes and partial edge blocks never appear. A level of factor f has ceil(w/f) x ceil(h/f)
pixels (GDAL's convention); an edge block averages the pixels that exist.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

import numpy as np

from ..errors import SarlangError

RESAMPLINGS = ("average", "nearest")
MIN_OVERVIEW_SIDE = 256  # default pyramids stop once the coarsest level fits in 256 x 256


def default_factors(width: int, height: int, min_side: int = MIN_OVERVIEW_SIDE) -> Tuple[int, ...]:
    """Powers of two until the coarsest level's larger side is <= ``min_side``."""
    factors, f = [], 2
    while max(-(-width // (f // 2)), -(-height // (f // 2))) > min_side:  # previous level too large
        factors.append(f)
        f *= 2
    return tuple(factors)


def check_factors(factors: Sequence[int]) -> Tuple[int, ...]:
    out = tuple(int(f) for f in factors)
    if not out or out[0] < 2 or any(b % a or b <= a for a, b in zip(out, out[1:])):
        raise SarlangError(f"overview factors must be increasing integers >= 2, each a multiple of the "
                           f"previous (e.g. 2, 4, 8), got {list(factors)}")
    return out


def level_shape(width: int, height: int, factor: int) -> Tuple[int, int]:
    """(height, width) of the level of ``factor``."""
    return -(-height // factor), -(-width // factor)


def _block_sum(a: np.ndarray, r: int) -> np.ndarray:
    h, w = a.shape
    hh, ww = -(-h // r), -(-w // r)
    if hh * r != h or ww * r != w:
        a = np.pad(a, ((0, hh * r - h), (0, ww * r - w)))
    return a.reshape(hh, r, ww, r).sum(axis=(1, 3))


def reduce_strip(strip: np.ndarray, factors: Sequence[int], resampling: str = "average") -> List[np.ndarray]:
    """Level rows of each factor for one strip of full-resolution rows.

    The strip must start at a row that is a multiple of the largest factor (so no block spans
    two strips); its last block row may be partial only at the bottom of the raster.
    """
    if resampling == "nearest":
        out = []
        for f in factors:
            rows = np.minimum(np.arange(-(-strip.shape[0] // f)) * f + f // 2, strip.shape[0] - 1)
            cols = np.minimum(np.arange(-(-strip.shape[1] // f)) * f + f // 2, strip.shape[1] - 1)
            out.append(np.ascontiguousarray(strip[np.ix_(rows, cols)], dtype=np.float32))
        return out
    if resampling != "average":
        raise SarlangError(f"overview resampling must be one of {RESAMPLINGS}, got {resampling!r}")
    valid = ~np.isnan(strip)
    sums = np.where(valid, strip, 0.0).astype(np.float64)
    counts = valid.astype(np.int32)
    out, prev = [], 1
    for f in factors:
        sums, counts = _block_sum(sums, f // prev), _block_sum(counts, f // prev)
        prev = f
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (sums / counts).astype(np.float32)
        out.append(np.where(counts > 0, mean, np.float32(np.nan)))
    return out


def strip_rows(width: int, max_factor: int, target_pixels: int = 4 * 2**20) -> int:
    """A strip height: a multiple of the largest factor, about ``target_pixels`` per strip."""
    return max(max_factor, (target_pixels // max(1, width)) // max_factor * max_factor)


def iter_reduced(read_rows: Callable[[int, int], np.ndarray], width: int, height: int,
                 factors: Sequence[int], resampling: str = "average",
                 target_pixels: int = 4 * 2**20) -> Iterator[Tuple[int, int, List[np.ndarray]]]:
    """Stream a band through the reducer: yields (row0, nrows, level rows per factor).

    ``read_rows(row0, nrows)`` returns full-resolution float32 rows with NaN where invalid.
    """
    step = strip_rows(width, max(factors), target_pixels)
    for row in range(0, height, step):
        n = min(step, height - row)
        yield row, n, reduce_strip(read_rows(row, n), factors, resampling)


class MemoryPyramid:
    """Decimated levels computed on first request and kept in memory (scenes without overviews).

    ``read_full(band, row0, nrows)`` gives full-resolution float32 rows (intensity for complex data).
    """

    def __init__(self, read_full: Callable[[int, int, int], np.ndarray], width: int, height: int,
                 factors: Sequence[int]):
        self._read = read_full
        self.width, self.height = width, height
        self.factors = tuple(factors)
        self._levels: Dict[int, List[np.ndarray]] = {}
        self._lock = threading.Lock()

    def level(self, band: int, index: int) -> np.ndarray:
        """The whole level ``index`` (1-based among overviews, as in Scene.levels) of ``band``."""
        with self._lock:  # one computation per band, even when several threads ask at once
            if band not in self._levels:
                h = [level_shape(self.width, self.height, f) for f in self.factors]
                arrays = [np.empty(s, dtype=np.float32) for s in h]
                for row, _n, parts in iter_reduced(lambda r, k: self._read(band, r, k), self.width,
                                                  self.height, self.factors):
                    for f, arr, part in zip(self.factors, arrays, parts):
                        arr[row // f: row // f + part.shape[0]] = part
                for arr in arrays:
                    arr.setflags(write=False)
                self._levels[band] = arrays
            return self._levels[band][index - 1]

    def computed(self, band: int) -> bool:
        return band in self._levels
