"""Keeps the before/after views in step with the viewport and the Pipeline.

Renders only the visible viewport (plus a margin) at the overview level that fits the zoom,
debounced, on the "io" lane; each request carries an id and a CancelToken, and a result for a
viewport or recipe the user already left is dropped. Exact stretch limits run on the "jobs" lane
while the view keeps showing the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from PySide6.QtCore import QObject, QRectF, QTimer, Signal

from app import workers
from sarlang_core.preprocess.pipeline import Pipeline
from sarlang_core.progress import CancelToken
from sarlang_core.services import Window

from .compare_view import CompareView

MARGIN = 0.15          # render this fraction beyond each side of the viewport, so small pans are instant
DEBOUNCE_MS = 30


@dataclass(frozen=True)
class Display:
    """What a view shows, prepared off the UI thread: grey RGBA pixels and a value histogram."""

    rgba: np.ndarray          # (H, W, 4) uint8, alpha 0 where invalid
    levels: tuple             # (lo, hi) in output units: the stretch limits
    hist_x: np.ndarray        # bin centres
    hist_y: np.ndarray        # counts


def make_display(render) -> Display:
    lo, hi = render.display_range
    grey = render.image
    rgba = np.empty(grey.shape + (4,), dtype=np.uint8)
    rgba[..., 0] = grey
    rgba[..., 1] = grey
    rgba[..., 2] = grey
    valid = ~np.isnan(render.values)
    rgba[..., 3] = valid.view(np.uint8) * np.uint8(255)
    span = max(hi - lo, 1e-3 * max(1.0, abs(lo)))
    sample = render.values[::2, ::2]
    sample = sample[~np.isnan(sample)]
    counts, edges = np.histogram(sample, bins=160, range=(lo - 0.6 * span, hi + 0.6 * span))
    return Display(rgba, (lo, hi), (edges[:-1] + edges[1:]) / 2, counts)


def render_pair(session, pipeline: Pipeline, level: int, window: Window, cancel: CancelToken):
    """Worker side: the raw and the processed render of one viewport, ready to show."""
    raw = session.render(pipeline.raw(), level, window, cancel)
    proc = session.render(pipeline, level, window, cancel)
    return raw, proc, make_display(raw), make_display(proc)


class RenderController(QObject):
    rendered = Signal(object, object)      # raw Render, processed Render
    limitsChanged = Signal(str)            # a line saying what the stretch limits are and where from
    failed = Signal(str)
    busy = Signal(bool)
    jobProgress = Signal(str, float)       # stage, fraction (exact limits)

    def __init__(self, compare: CompareView, parent=None):
        super().__init__(parent)
        self.compare = compare
        self.session = None
        self.pipeline = Pipeline()
        self._request = 0
        self._cancel: Optional[CancelToken] = None
        self._exact_pending = set()
        self.last_raw = None
        self.last_proc = None
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self._render_now)
        compare.viewportChanged.connect(self.schedule)

    def set_session(self, session, pipeline: Pipeline) -> None:
        self.cancel()
        self.session = session
        self.pipeline = pipeline
        self.last_raw = self.last_proc = None
        self._exact_pending.clear()

    def set_pipeline(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.schedule()

    def schedule(self) -> None:
        if self.session is not None:
            self._timer.start()

    @property
    def pending(self) -> bool:
        """A render is scheduled (debouncing) but not yet submitted."""
        return self._timer.isActive()

    def cancel(self) -> None:
        self._request += 1
        if self._cancel is not None:
            self._cancel.cancel()
            self._cancel = None

    # -- the viewport -----------------------------------------------------------------------
    def viewport_request(self):
        """(level, window in that level's grid) covering the visible rect plus a margin."""
        view = self.compare.active_view()
        r = view.visible_rect()
        return self.session.view_window((r.left(), r.top(), r.width(), r.height()),
                                        view.screen_pixels_per_scene_pixel(), MARGIN)

    def _render_now(self) -> None:
        if self.session is None:
            return
        level, window = self.viewport_request()
        if window is None:
            return
        pipeline = self._live_pipeline()
        self.cancel()
        self._cancel = cancel = CancelToken()
        rid = self._request
        self.busy.emit(True)
        workers.submit("io", rid, render_pair, self.session, pipeline, level, window, cancel,
                       on_result=self._on_rendered, on_error=self._on_failed)

    def _live_pipeline(self) -> Pipeline:
        """The recipe to render now: exact limits not computed yet render with the estimate."""
        p = self.pipeline
        if p.stretch is None or p.stretch.limits != "exact":
            return p
        if self.session.cached_limits(p) is not None:
            return p
        self._start_exact(p)
        return p.with_(stretch=replace(p.stretch, limits="estimate"))

    def _start_exact(self, p: Pipeline) -> None:
        key = (self.session.filter_key(p), p.db, p.db_floor, p.stretch)
        if key in self._exact_pending:
            return
        self._exact_pending.add(key)
        session = self.session

        def done(_rid, _limits):
            self._exact_pending.discard(key)
            if session is self.session:
                self.jobProgress.emit("", 1.0)
                self.schedule()

        def failed(_rid, exc):
            self._exact_pending.discard(key)
            self.failed.emit(f"Exact stretch limits failed: {exc}")

        workers.submit("jobs", key, session.limits, p, on_result=done, on_error=failed,
                       on_progress=lambda _rid, pr: self.jobProgress.emit("exact stretch limits", pr.fraction))

    def _on_rendered(self, rid, result) -> None:
        if rid != self._request:
            return  # stale: the user has moved on
        self.busy.emit(False)
        raw, proc, raw_display, proc_display = result
        self.last_raw, self.last_proc = raw, proc
        f = self.session.scene.levels[proc.level].factor
        w = proc.window
        rect = QRectF(w.col_off * f, w.row_off * f, w.width * f, w.height * f)
        self.compare.show_pair(raw_display, proc_display, rect)
        self.rendered.emit(raw, proc)
        if proc.limits is not None:
            text = proc.limits.describe()
            stretch = self.pipeline.stretch
            if stretch is not None and stretch.limits == "exact" and proc.limits.mode != "exact":
                text += " — exact limits are being computed…"
            self.limitsChanged.emit(text)
        else:
            self.limitsChanged.emit("No stretch: the view spans the viewport's min…max")

    def _on_failed(self, rid, exc) -> None:
        if rid != self._request:
            return
        self.busy.emit(False)
        from sarlang_core.errors import CancelledError
        if not isinstance(exc, CancelledError):
            self.failed.emit(str(exc))

    # -- what is under the cursor -------------------------------------------------------------
    def sample(self, x: float, y: float):
        """(raw value, processed value, level) at scene pixel (x, y) from the last render, or None."""
        if self.last_raw is None or self.session is None:
            return None
        proc, raw = self.last_proc, self.last_raw
        f = self.session.scene.levels[proc.level].factor
        c = int(math.floor(x / f)) - proc.window.col_off
        r = int(math.floor(y / f)) - proc.window.row_off
        if not (0 <= r < proc.values.shape[0] and 0 <= c < proc.values.shape[1]):
            return None
        return float(raw.values[r, c]), float(proc.values[r, c]), proc.level

