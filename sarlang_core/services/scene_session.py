"""One open scene and everything done with it: rendering viewports, stretch limits, region
statistics and export, all through the same Pipeline."""

from __future__ import annotations

import io
import math
import threading
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np

from ..errors import CancelledError, PipelineError
from ..io import Window, open_scene
from ..preprocess.pipeline import Pipeline, StretchSpec
from ..preprocess.radiometry import output_values, resolve_quantity, stretch_to_uint8
from ..preprocess.stretch import HistogramAccumulator, StretchLimits, percentile_limits, widen
from ..preprocess.tiles import FilterKey, TileCache, TiledFilter, settle, tile_grid
from ..progress import CancelToken, ProgressCallback, check, report

ESTIMATE_PIXELS = 1 << 20     # the overview used for estimated limits has about this many pixels
SAMPLE_BLOCK = 128            # side of the blocks sampled when no level is that small (no overviews)
STATS_MAX_PIXELS = 4 << 20    # region statistics use the finest level with at most this many


@dataclass(frozen=True)
class Render:
    """A processed viewport: values before the stretch, the uint8 image, and the limits used."""

    level: int
    window: Window
    values: np.ndarray          # float32, NaN where invalid (dB or linear)
    image: np.ndarray           # uint8 after the scene-wide stretch (0 where invalid)
    limits: Optional[StretchLimits]

    @property
    def display_range(self) -> Tuple[float, float]:
        """(lo, hi) the image spans, in output units: the stretch limits, else this render's min..max."""
        if self.limits is not None:
            return self.limits.lo, self.limits.hi
        return _minmax(self.values)


@dataclass(frozen=True)
class RegionStats:
    mean: float          # linear intensity
    std: float
    enl: float           # mean^2 / var: how much speckle is left
    mean_db: float
    pixels: int


@dataclass(frozen=True)
class StatsPair:
    before: RegionStats
    after: RegionStats
    level: int
    window: Window       # in that level's pixel grid

    @property
    def enl_gain(self) -> float:
        return self.after.enl / self.before.enl if self.before.enl > 0 else float("nan")


class SceneSession:
    """Thread-safe: renders may run on worker threads while the UI asks for other things."""

    def __init__(self, scene, *, cache: Optional[TileCache] = None, tile: int = 512, device: str = "auto"):
        self.scene = scene
        self.tiles = TiledFilter(scene, tile=tile, cache=cache, device=device)
        self._limits: dict = {}
        self._lock = threading.Lock()
        self._users = 0          # calls in flight; close() waits for the last one to finish
        self._closing = False
        self._closed = False

    @classmethod
    def open(cls, path: Union[str, Path], **kwargs) -> "SceneSession":
        return cls(open_scene(path), **kwargs)

    def close(self) -> None:
        """Close now, or as soon as the calls still running on other threads have finished
        (closing a GDAL handle under a running read would crash the process)."""
        with self._lock:
            self._closing = True
            idle = self._users == 0 and not self._closed
            if idle:
                self._closed = True
        if idle:
            self._close_now()

    def _close_now(self) -> None:
        self.tiles.close()
        self.scene.close()

    @contextmanager
    def _in_use(self):
        with self._lock:
            if self._closing:
                raise CancelledError("the scene was closed")
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                last = self._closing and self._users == 0 and not self._closed
                if last:
                    self._closed = True
            if last:
                self._close_now()

    # -- recipe resolution ----------------------------------------------------------------
    def filter_key(self, pipeline: Pipeline) -> FilterKey:
        scene = self.scene
        band = scene.band_index(pipeline.band)
        quantity = resolve_quantity(pipeline.quantity, scene.quantity, scene.dtype, scene.is_complex)
        if quantity == "db" and scene.is_complex:
            raise PipelineError(f"{scene.name} holds complex samples, not dB: choose another quantity")
        complex_as = "amplitude" if (scene.is_complex and quantity == "amplitude") else "intensity"
        return FilterKey(band, complex_as, quantity, pipeline.domain, pipeline.filter)

    def chain_warnings(self, pipeline: Pipeline) -> List[str]:
        """Warnings about applying ``pipeline`` to this scene (cheap: no reads). Today: values that
        look like dB while the pipeline takes them as linear, which would take the log twice."""
        if self.filter_key(pipeline).quantity == "db":
            return []
        return [f"{w}; if the band holds dB, set the quantity to dB (--quantity db)"
                for w in self.scene.db_warnings()]

    def values(self, pipeline: Pipeline, level: int, window: Window,
               cancel: Optional[CancelToken] = None) -> np.ndarray:
        with self._in_use():
            filtered = self.tiles.window(self.filter_key(pipeline), level, window, cancel)
        return output_values(filtered, pipeline.domain, pipeline.db, pipeline.db_floor)

    # -- stretch limits -------------------------------------------------------------------
    def estimate_level(self) -> int:
        """The finest overview with at most ESTIMATE_PIXELS pixels (the coarsest if none is that small)."""
        levels = self.scene.levels
        for lv in levels:
            if lv.width * lv.height <= ESTIMATE_PIXELS:
                return lv.index
        return levels[-1].index

    def _limits_key(self, pipeline: Pipeline):
        return (self.filter_key(pipeline), pipeline.db, pipeline.db_floor, pipeline.stretch)

    def cached_limits(self, pipeline: Pipeline) -> Optional[StretchLimits]:
        with self._lock:
            return self._limits.get(self._limits_key(pipeline))

    def limits(self, pipeline: Pipeline, *, progress: Optional[ProgressCallback] = None,
               cancel: Optional[CancelToken] = None) -> Optional[StretchLimits]:
        """Scene-wide limits for ``pipeline.stretch`` (None when it has no stretch). Cached."""
        spec = pipeline.stretch
        if spec is None:
            return None
        ckey = self._limits_key(pipeline)
        cached = self.cached_limits(pipeline)
        if cached is not None:
            return cached
        estimate = self._estimate(pipeline, spec, cancel)
        result = estimate if spec.limits == "estimate" else self._exact(pipeline, spec, estimate, progress, cancel)
        with self._lock:
            self._limits[ckey] = result
        return result

    def _estimate(self, pipeline: Pipeline, spec: StretchSpec, cancel) -> StretchLimits:
        level = self.estimate_level()
        lv = self.scene.levels[level]
        blocks = 0
        if lv.width * lv.height <= ESTIMATE_PIXELS:
            vals = self.values(pipeline, level, Window(0, 0, lv.width, lv.height), cancel)
        else:
            # No level is small enough (most SAR products come without overviews): reading the
            # coarsest one whole would hold the full scene and the filter's copies in memory.
            # Full-resolution blocks spread over the scene, filtered as the export filters them,
            # give the same distribution at a memory cost set by ESTIMATE_PIXELS.
            wins = sample_windows(lv.width, lv.height, ESTIMATE_PIXELS, SAMPLE_BLOCK)
            vals = self._sampled_values(pipeline, level, wins, cancel)
            blocks = len(wins)
        found = percentile_limits(vals, spec.low, spec.high)
        lo, hi = found if found is not None else (0.0, 1.0)
        # A scene small enough to be its own estimate level gets exact percentiles for free.
        mode = "exact" if level == 0 and not blocks else "estimate"
        return StretchLimits(lo, hi, spec.low, spec.high, mode, level, lv.factor,
                             int(np.count_nonzero(~np.isnan(vals))), pipeline.output_unit, blocks)

    def _sampled_values(self, pipeline: Pipeline, level: int, wins: List[Window], cancel) -> np.ndarray:
        key = self.filter_key(pipeline)
        with self._in_use():
            futures = [self.tiles.submit_block(key, level, w) for w in wins]
            try:
                parts = []
                for fut in futures:
                    check(cancel)
                    parts.append(fut.result().ravel())
            finally:
                settle(futures)
        filtered = np.concatenate(parts)
        return output_values(filtered, pipeline.domain, pipeline.db, pipeline.db_floor)

    def _exact(self, pipeline, spec, estimate, progress, cancel) -> StretchLimits:
        # The estimate bounds the histogram; a percentile outside it (rare) widens the range and
        # repeats the pass, so the result is exact to 1/65536 of the range either way.
        span = max(estimate.hi - estimate.lo, 1e-6)
        lo, hi = estimate.lo - 2 * span, estimate.hi + 2 * span
        for _attempt in range(3):
            acc = HistogramAccumulator(lo, hi)
            for vals in self.iter_values(pipeline, progress=progress, cancel=cancel, stage="exact limits"):
                acc.add(vals)
            plo, phi = acc.percentile(spec.low), acc.percentile(spec.high)
            if plo is not None and phi is not None:
                plo, phi = widen(plo, phi)
                return StretchLimits(plo, phi, spec.low, spec.high, "exact", 0, 1, acc.total, pipeline.output_unit)
            if acc.total == 0:
                break
            span = hi - lo
            lo, hi = lo - 8 * span, hi + 8 * span
        return StretchLimits(estimate.lo, estimate.hi, spec.low, spec.high, "estimate", estimate.level,
                             estimate.factor, estimate.pixels, pipeline.output_unit)

    def iter_values(self, pipeline: Pipeline, *, block: int = 1024, progress=None, cancel=None, stage="processing"):
        """Full-resolution output values block by block (memory set by ``block``, not the scene)."""
        for _win, vals in self.iter_blocks(pipeline, block=block, progress=progress, cancel=cancel, stage=stage):
            yield vals

    def iter_blocks(self, pipeline: Pipeline, *, block: int = 1024, progress=None, cancel=None, stage="processing"):
        key = self.filter_key(pipeline)
        lv = self.scene.levels[0]
        wins = [w for _, _, w in tile_grid(lv.width, lv.height, block)]
        # Read-ahead of one block on the pool overlaps I/O with filtering of the previous block.
        submit = lambda w: self.tiles.submit_block(key, 0, w)  # noqa: E731
        with self._in_use():
            inflight: List[Future] = []
            try:
                for i, win in enumerate(wins):
                    check(cancel)
                    if not inflight:
                        inflight.append(submit(win))
                    if i + 1 < len(wins):
                        inflight.append(submit(wins[i + 1]))
                    filtered = inflight.pop(0).result()
                    yield win, output_values(filtered, pipeline.domain, pipeline.db, pipeline.db_floor)
                    report(progress, stage, i + 1, len(wins))
                check(cancel)
            finally:
                settle(inflight)

    # -- rendering ------------------------------------------------------------------------
    def view_window(self, rect, screen_per_scene_pixel: float, margin: float = 0.0) -> Tuple[int, Optional[Window]]:
        """(level, window in that level's grid) to render for a view showing ``rect`` (x, y, w, h in
        full-resolution pixels) at ``screen_per_scene_pixel``, ``margin`` (a fraction of the rect)
        added on each side; the window is None when nothing of the scene is in view."""
        scene = self.scene
        level = scene.level_for_zoom(screen_per_scene_pixel)
        lv = scene.levels[level]
        f = lv.factor
        x, y, w, h = (float(v) for v in rect)
        mx, my = w * margin, h * margin
        x0, y0 = max(0.0, x - mx), max(0.0, y - my)
        x1, y1 = min(float(scene.width), x + w + mx), min(float(scene.height), y + h + my)
        if x1 <= x0 or y1 <= y0:
            return level, None
        c0, r0 = max(0, int(math.floor(x0 / f))), max(0, int(math.floor(y0 / f)))
        c1, r1 = min(lv.width, int(math.ceil(x1 / f))), min(lv.height, int(math.ceil(y1 / f)))
        if c1 <= c0 or r1 <= r0:
            return level, None
        return level, Window(c0, r0, c1 - c0, r1 - r0)

    def render(self, pipeline: Pipeline, level: int, window: Window, cancel: Optional[CancelToken] = None) -> Render:
        with self._in_use():
            limits = self.limits(pipeline, cancel=cancel)
            vals = self.values(pipeline, level, window, cancel)
        if limits is None:
            image = stretch_to_uint8(vals, *_minmax(vals))
        else:
            image = stretch_to_uint8(vals, limits.lo, limits.hi)
        return Render(level, window, vals, image, limits)

    # -- region statistics ----------------------------------------------------------------
    def region_stats(self, pipeline: Pipeline, window: Window, cancel: Optional[CancelToken] = None) -> StatsPair:
        """Mean, std and ENL of linear intensity in ``window`` (full-resolution pixels), raw vs filtered."""
        level = 0
        for lv in self.scene.levels:
            w = max(1, window.width // lv.factor)
            h = max(1, window.height // lv.factor)
            level = lv.index
            if w * h <= STATS_MAX_PIXELS:
                break
        f = self.scene.levels[level].factor
        win = Window(window.col_off // f, window.row_off // f, max(1, window.width // f), max(1, window.height // f))
        with self._in_use():
            before = self._stats(pipeline.raw(), level, win, cancel)
            after = self._stats(pipeline, level, win, cancel)
        return StatsPair(before, after, level, win)

    def _stats(self, pipeline: Pipeline, level: int, win: Window, cancel) -> RegionStats:
        key = self.filter_key(pipeline)
        vals = self.tiles.window(key, level, win, cancel).astype(np.float64)
        if pipeline.domain == "amplitude":
            vals = vals * vals
        vals = vals[~np.isnan(vals)]
        if vals.size == 0:
            nan = float("nan")
            return RegionStats(nan, nan, nan, nan, 0)
        mean = float(vals.mean())
        var = float(vals.var(ddof=1)) if vals.size > 1 else 0.0
        enl = mean * mean / var if var > 0 else float("inf")
        mean_db = 10.0 * np.log10(mean) if mean > 0 else float("-inf")
        return RegionStats(mean, var ** 0.5, enl, float(mean_db), int(vals.size))


def sample_windows(width: int, height: int, budget: int = ESTIMATE_PIXELS, side: int = SAMPLE_BLOCK) -> List[Window]:
    """An even grid of ``side`` x ``side`` windows covering the scene, about ``budget`` pixels in all."""
    per_axis = max(1, int(math.sqrt(budget / float(side * side))))
    w, h = min(side, width), min(side, height)
    cols = [int(round((width - w) * (i + 0.5) / per_axis)) for i in range(per_axis)]
    rows = [int(round((height - h) * (j + 0.5) / per_axis)) for j in range(per_axis)]
    return [Window(c, r, w, h) for r in rows for c in cols]


def png_bytes(render: Render) -> bytes:
    """A render as a PNG: grey plus alpha, nodata transparent (as the views show it)."""
    from PIL import Image

    alpha = np.where(np.isnan(render.values), np.uint8(0), np.uint8(255)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.dstack([render.image, alpha]), mode="LA").save(buf, format="PNG")
    return buf.getvalue()


def _minmax(vals: np.ndarray):
    valid = vals[~np.isnan(vals)]
    if valid.size == 0:
        return 0.0, 1.0
    return widen(float(valid.min()), float(valid.max()))


def build_overviews(path: Union[str, Path], *, progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelToken] = None) -> Path:
    """Overviews for a scene that has none, built in the cache (the file itself is not modified)."""
    from ..io import build_overviews as build

    return build(path, progress=progress, cancel=cancel)


def warm_up_filters() -> None:
    """Compile (or load from the on-disk cache) the speckle filters' kernels; slow the first time."""
    from ..preprocess.filters.warmup import warmup

    warmup()


def check_pipeline_for_scene(scene, pipeline: Pipeline) -> None:
    """Raise PipelineError early when the recipe cannot apply to this scene (e.g. no VH band)."""
    try:
        scene.band_index(pipeline.band)
    except Exception as exc:
        raise PipelineError(str(exc)) from None


def filter_device_note() -> str:
    """Why preprocessing left the GPU in this process ('' while it has not): for the status bar."""
    from ..preprocess.filters import device_note

    return device_note()
