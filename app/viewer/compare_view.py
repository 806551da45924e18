"""Before/after: two linked views side by side, or one view with a draggable swipe divider."""

from __future__ import annotations

from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import QSplitter, QStackedWidget, QVBoxLayout, QWidget

from .scene_view import SceneView, SwipeOverlay

SIDE, SWIPE = "side", "swipe"
MIN_VIEW_WIDTH, MIN_VIEW_HEIGHT = 240, 200


class CompareView(QWidget):
    viewportChanged = Signal()
    hovered = Signal(float, float)
    regionChanged = Signal(QRectF)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("CompareView")
        # Without a floor, docks restored from a bigger screen can squeeze the images to a sliver.
        self.setMinimumSize(MIN_VIEW_WIDTH, MIN_VIEW_HEIGHT)
        self.raw_view = SceneView("Before: raw")
        self.proc_view = SceneView("After: processed")
        # pyqtgraph's axis links align views by their screen position (made for stacked plots);
        # side by side, both views must show the same scene rectangle, so they are synced here.
        self._syncing = False
        self.raw_view.vb.sigRangeChanged.connect(lambda *_: self._sync(self.raw_view, self.proc_view))
        self.proc_view.vb.sigRangeChanged.connect(lambda *_: self._sync(self.proc_view, self.raw_view))
        self.split = QSplitter()
        self.split.addWidget(self.raw_view)
        self.split.addWidget(self.proc_view)
        self.swipe_view = SceneView("Swipe: before ◀ | ▶ after")
        self.swipe = SwipeOverlay(self.swipe_view)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.split)
        self.stack.addWidget(self.swipe_view)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self.mode = SIDE
        self._mirroring = False
        for v in (self.raw_view, self.proc_view, self.swipe_view):
            v.viewportChanged.connect(self._viewport_changed)
            v.hovered.connect(self.hovered)
            v.regionChanged.connect(lambda rect, src=v: self._region_changed(src, rect))
            v.regionMoving.connect(lambda rect, src=v: self._region_moving(src, rect))
            v.vb.sigRangeChangedManually.connect(self._user_moved)

    # -- modes --------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        if mode == self.mode:
            return
        rect = self.active_view().visible_rect()
        region = self.active_view().region_rect()
        had_region = self.active_view().region is not None
        for v in self.views():
            v.clear_region()
        self.mode = mode
        self.stack.setCurrentIndex(0 if mode == SIDE else 1)
        self.active_view().vb.setRange(rect, padding=0)
        if mode == SWIPE:
            self.swipe.set_position(rect.center().x())
        if had_region:
            self.start_region(region)
        self.viewportChanged.emit()

    def views(self):
        return (self.raw_view, self.proc_view, self.swipe_view)

    def active_view(self) -> SceneView:
        return self.proc_view if self.mode == SIDE else self.swipe_view

    def set_extent(self, width: int, height: int) -> None:
        for v in self.views():
            v.clear_region()
            v.set_extent(width, height, fit=False)
        self.proc_view.fit()      # the raw view follows through the link
        self.swipe_view.fit()
        self.swipe.set_position(width / 2)

    def fit(self) -> None:
        self.active_view().fit()

    def set_view(self, rect: QRectF) -> None:
        self._user_moved()
        self.active_view().set_view(rect)

    def _sync(self, src, dst) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            dst.vb.setRange(src.vb.viewRect(), padding=0)
        finally:
            self._syncing = False

    def _user_moved(self, *_):
        for v in self.views():
            v._manual_range()

    # -- content ------------------------------------------------------------------------------
    def show_pair(self, raw, proc, rect: QRectF) -> None:
        """Show two prepared Displays (see render_controller.make_display) over ``rect``."""
        self.raw_view.show_display(raw, rect)
        self.proc_view.show_display(proc, rect)
        self.swipe_view.show_display(proc, rect)
        self.swipe.show_display(raw, rect)

    # -- region -------------------------------------------------------------------------------
    def start_region(self, rect: QRectF = None) -> None:
        """Side by side, the rectangle shows on both views (the raw one mirrors the processed one);
        in swipe mode on the one view."""
        self.active_view().start_region(rect)

    def region_rect(self) -> QRectF:
        return self.active_view().region_rect()

    def _partner(self, view: SceneView):
        if self.mode != SIDE:
            return None
        return {self.raw_view: self.proc_view, self.proc_view: self.raw_view}.get(view)

    def _region_moving(self, src: SceneView, rect: QRectF) -> None:
        partner = self._partner(src)
        if partner is not None and not self._mirroring:
            self._mirroring = True
            try:
                partner.follow_region(rect)
            finally:
                self._mirroring = False

    def _region_changed(self, src: SceneView, rect: QRectF) -> None:
        if self._mirroring:
            return
        partner = self._partner(src)
        if partner is not None:
            self._mirroring = True
            try:
                if rect.isEmpty():
                    partner.clear_region()
                else:
                    partner.start_region(rect)
            finally:
                self._mirroring = False
        self.regionChanged.emit(rect)

    def _viewport_changed(self) -> None:
        self.viewportChanged.emit()
