"""Scene-wide stretch limits: percentiles of the chain's output over the whole scene.

Limits are never per tile or per viewport, so every tile, the view and an export share one
mapping. 'estimate' computes them on one overview level; 'exact' streams every full-resolution
tile through a fine histogram (resolution 1/65536 of the value range, far below one grey level).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIST_BINS = 65536
EXACT_SOURCE = "full scene, exact"  # how describe() says the limits are exact


@dataclass(frozen=True)
class StretchLimits:
    lo: float
    hi: float
    low_pct: float
    high_pct: float
    mode: str            # "estimate" | "exact"
    level: int           # level the values came from (0 = full resolution)
    factor: int          # that level's decimation factor
    pixels: int          # valid pixels the percentiles were taken over
    unit: str = "dB"
    blocks: int = 0      # > 0: estimated from this many sampled blocks of that level (no small overview)

    def describe(self) -> str:
        if self.mode == "exact":
            source = EXACT_SOURCE
        elif self.blocks:
            source = f"estimated from {self.blocks} blocks of 1:{self.factor}"
        else:
            source = f"estimated from overview 1:{self.factor}"
        if not self.pixels:
            return f"no valid pixels ({source}): every pixel read is nodata or invalid"
        return (f"{self.low_pct:g}–{self.high_pct:g} % → {self.lo:.2f} … {self.hi:.2f} {self.unit} "
                f"({source}, {self.pixels:,} px)")


def percentile_limits(values: np.ndarray, low: float, high: float) -> tuple | None:
    """Percentiles of the valid (non-NaN) values, or None when there are none."""
    valid = values[~np.isnan(values)]
    if valid.size == 0:
        return None
    lo, hi = np.percentile(valid, [low, high])
    return widen(float(lo), float(hi))


def widen(lo: float, hi: float) -> tuple:
    """A usable range even for a flat scene (one pixel, a constant band): one unit either side."""
    if hi - lo <= 1e-6 * max(1.0, abs(lo), abs(hi)):
        return lo - 1.0, hi + 1.0
    return lo, hi


class HistogramAccumulator:
    """Streams values into a fixed-range fine histogram, with under/overflow counts."""

    def __init__(self, lo: float, hi: float, bins: int = HIST_BINS):
        if not hi > lo:
            hi = lo + 1.0
        self.lo, self.hi, self.bins = float(lo), float(hi), bins
        self.counts = np.zeros(bins, dtype=np.int64)
        self.below = 0
        self.above = 0

    def add(self, values: np.ndarray) -> None:
        v = values[~np.isnan(values)].astype(np.float64, copy=False)
        if v.size == 0:
            return
        self.below += int(np.count_nonzero(v < self.lo))
        self.above += int(np.count_nonzero(v > self.hi))
        inside = v[(v >= self.lo) & (v <= self.hi)]
        idx = ((inside - self.lo) * (self.bins / (self.hi - self.lo))).astype(np.int64)
        np.minimum(idx, self.bins - 1, out=idx)
        self.counts += np.bincount(idx, minlength=self.bins)

    @property
    def total(self) -> int:
        return int(self.counts.sum()) + self.below + self.above

    def percentile(self, pct: float) -> float | None:
        """The value at ``pct``; None when it falls outside the histogram's range."""
        total = self.total
        if total == 0:
            return None
        rank = pct / 100.0 * (total - 1)
        if rank < self.below or rank > total - self.above - 1:
            return None
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, rank - self.below, side="right"))
        width = (self.hi - self.lo) / self.bins
        return self.lo + (i + 0.5) * width
