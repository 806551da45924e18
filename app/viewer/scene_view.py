"""A scene view on pyqtgraph: ViewBox + ImageItem + HistogramLUTItem, in full-resolution scene
pixel coordinates (x = column, y = row, y down), fed with renders of whichever overview level
fits the zoom."""

from __future__ import annotations

from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background="#15171a", foreground="#c8ccd2")


class SceneView(pg.GraphicsLayoutWidget):
    """One image in a ViewBox with its histogram; emits where the user looks and points."""

    viewportChanged = Signal()
    hovered = Signal(float, float)          # scene x (col), y (row), full-resolution pixels
    regionChanged = Signal(QRectF)          # the region-statistics rectangle, scene pixels
    regionMoving = Signal(QRectF)           # the same, while it is being dragged or resized

    def __init__(self, title: str = "", parent=None, with_histogram: bool = True):
        super().__init__(parent=parent)
        self.setObjectName(f"SceneView:{title}")
        self.title = self.addLabel(title, row=0, col=0, colspan=2, size="9pt", color="#9aa3ad")
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.vb.setBackgroundColor("#0d0e10")
        self.addItem(self.vb, row=1, col=0)
        # Pixels arrive as RGBA already stretched on a worker thread: the UI thread only blits them.
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.histogram: Optional[pg.HistogramLUTItem] = None
        if with_histogram:
            # Not linked to the image (that would histogram the RGBA bytes on the UI thread): the
            # worker sends the histogram of the viewport's values in output units (dB).
            self.histogram = pg.HistogramLUTItem(gradientPosition="right")
            self.histogram.setMaximumWidth(95)
            self.histogram.gradient.hide()           # grey ramp: the pipeline's stretch is linear grey
            self.histogram.region.setMovable(False)  # limits come from the scene-wide pipeline stretch
            self.histogram.vb.setMouseEnabled(x=False, y=False)
            self.addItem(self.histogram, row=1, col=1)
        self.extent = QRectF()
        self.levels = (0.0, 1.0)
        self.region: Optional[pg.RectROI] = None
        # Until the user pans or zooms, a freshly opened scene keeps fitting the view as the
        # window lays itself out (the first fit happens before the widget has its real size).
        self._autofit = False
        self.vb.sigRangeChangedManually.connect(self._manual_range)
        self.vb.sigRangeChanged.connect(lambda *_: self.viewportChanged.emit())
        self.vb.sigResized.connect(self._resized)
        self.scene().sigMouseMoved.connect(self._on_mouse)

    # -- content ----------------------------------------------------------------------------
    def set_extent(self, width: int, height: int, fit: bool = True) -> None:
        self.extent = QRectF(0, 0, width, height)
        self.image.clear()
        # No pan limits: with a locked aspect they would stop a tall, narrow view from fitting
        # the whole width. Only zooming in past 4 scene pixels is prevented.
        self.vb.setLimits(minXRange=4, minYRange=4)
        if fit:
            self.fit()

    def fit(self) -> None:
        if not self.extent.isEmpty():
            self.vb.setRange(self.extent, padding=0.02)
            self._autofit = True

    def set_view(self, rect: QRectF) -> None:
        """Show ``rect`` (scene pixels), as if the user had panned there."""
        self._autofit = False
        self.vb.setRange(rect, padding=0)

    def _manual_range(self, *_):
        self._autofit = False

    def _resized(self, *_):
        if self._autofit:
            self.fit()
        self.viewportChanged.emit()

    def show_display(self, display, rect: QRectF) -> None:
        """Show a prepared Display (RGBA pixels + histogram) over ``rect`` in scene pixels."""
        self.levels = display.levels
        self.image.setImage(display.rgba, autoLevels=False, levels=None)
        self.image.setRect(rect)
        if self.histogram is not None:
            lo, hi = display.levels
            span = hi - lo
            self.histogram.plot.setData(display.hist_x, display.hist_y)
            self.histogram.region.setRegion((lo, hi))
            self.histogram.setHistogramRange(lo - 0.6 * span, hi + 0.6 * span, padding=0)

    # -- geometry ---------------------------------------------------------------------------
    def visible_rect(self) -> QRectF:
        return self.vb.viewRect()

    def screen_pixels_per_scene_pixel(self) -> float:
        rect = self.vb.viewRect()
        width_px = max(1.0, self.vb.width())
        return width_px / max(rect.width(), 1e-9)

    def _on_mouse(self, pos: QPointF) -> None:
        if self.vb.sceneBoundingRect().contains(pos):
            p = self.vb.mapSceneToView(pos)
            self.hovered.emit(p.x(), p.y())

    # -- region tool ------------------------------------------------------------------------
    def start_region(self, rect: Optional[QRectF] = None) -> pg.RectROI:
        if self.region is None:
            if rect is None:
                view = self.vb.viewRect().intersected(self.extent) if not self.extent.isEmpty() else self.vb.viewRect()
                w, h = view.width() / 4, view.height() / 4
                rect = QRectF(view.center().x() - w / 2, view.center().y() - h / 2, w, h)
            self.region = pg.RectROI(rect.topLeft(), rect.size(), pen=pg.mkPen("#ffb000", width=2),
                                     hoverPen=pg.mkPen("#ffd060", width=2), removable=True)
            self.region.setZValue(20)
            self.vb.addItem(self.region)
            self.region.sigRegionChangeFinished.connect(lambda *_: self.regionChanged.emit(self.region_rect()))
            self.region.sigRegionChanged.connect(lambda *_: self.regionMoving.emit(self.region_rect()))
            self.region.sigRemoveRequested.connect(lambda *_: self.clear_region())
        elif rect is not None:
            self.region.setPos(rect.topLeft(), finish=False)
            self.region.setSize(rect.size())
        self.regionChanged.emit(self.region_rect())
        return self.region

    def follow_region(self, rect: QRectF) -> None:
        """Move an existing rectangle along with another view's drag, without announcing it."""
        if self.region is not None and rect != self.region_rect():
            self.region.setPos(rect.topLeft(), update=False, finish=False)
            self.region.setSize(rect.size(), finish=False)

    def region_rect(self) -> QRectF:
        if self.region is None:
            return QRectF()
        pos, size = self.region.pos(), self.region.size()
        return QRectF(pos.x(), pos.y(), size.x(), size.y())

    def clear_region(self) -> None:
        if self.region is not None:
            self.vb.removeItem(self.region)
            self.region = None
            self.regionChanged.emit(QRectF())


class SwipeOverlay:
    """A second image clipped to the left of a draggable vertical divider inside a SceneView."""

    def __init__(self, view: SceneView):
        self.view = view
        self.clip = QGraphicsRectItem()
        self.clip.setFlag(QGraphicsRectItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.clip.setPen(QPen(Qt.PenStyle.NoPen))
        self.clip.setZValue(5)
        view.vb.addItem(self.clip, ignoreBounds=True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setParentItem(self.clip)
        self.divider = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(QColor("#ffb000"), width=2),
                                       hoverPen=pg.mkPen(QColor("#ffd060"), width=4),
                                       label="◀ before | after ▶", labelOpts={"position": 0.04, "color": "#ffd060",
                                                                           "fill": (0, 0, 0, 140)})
        self.divider.setZValue(30)
        view.vb.addItem(self.divider, ignoreBounds=True)
        self.divider.sigPositionChanged.connect(self._update_clip)
        view.vb.sigRangeChanged.connect(lambda *_: self._update_clip())

    def set_position(self, x: float) -> None:
        self.divider.setValue(x)

    def position(self) -> float:
        return float(self.divider.value())

    def show_display(self, display, rect: QRectF) -> None:
        self.image.setImage(display.rgba, autoLevels=False, levels=None)
        self.image.setRect(rect)

    def set_visible(self, visible: bool) -> None:
        self.clip.setVisible(visible)
        self.divider.setVisible(visible)

    def _update_clip(self) -> None:
        view = self.view.vb.viewRect()
        x = self.position()
        left = min(view.left(), self.view.extent.left()) - 1e6
        top = min(view.top(), self.view.extent.top()) - 1e6
        self.clip.setRect(QRectF(left, top, max(0.0, x - left), 4e6 + view.height()))
