"""A word's map drawn over a scene view: a heat image placed on the map grid's rectangle in
full-resolution scene pixels, and a marker on its peak."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from sarlang_core.services.explain import colorize

HEAT_Z = 10          # above the image (0) and the swipe's raw half (5), below answer boxes (15)
MARK_Z = 11
MAX_SIDE = 512       # the upsampled heat image's longest side (the grid itself is 20-70 cells)


def upsample(placement, scores: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """The map sampled bilinearly (``placement.sample``) at the centres of a fine grid of pixels
    over its rectangle: float32 (h, w), the same rectangle, smooth at any zoom."""
    x0, y0, x1, y1 = placement.rect
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6)
    scale = max_side / max(w, h)
    nw, nh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    xs = x0 + (np.arange(nw) + 0.5) * (w / nw)
    ys = y0 + (np.arange(nh) + 0.5) * (h / nh)
    return placement.sample(scores, xs, ys)


def rect_of(placement) -> QRectF:
    x0, y0, x1, y1 = placement.rect
    return QRectF(x0, y0, x1 - x0, y1 - y0)


class HeatOverlay:
    """Owns the heat image and the peak marker it adds to one SceneView's ViewBox."""

    def __init__(self, view):
        self.view = view
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setZValue(HEAT_Z)
        self.image.setVisible(False)
        self.marker = pg.ScatterPlotItem(size=16, symbol="o", pen=pg.mkPen("#ffffff", width=2),
                                         brush=pg.mkBrush(0, 0, 0, 0), pxMode=True)
        self.marker.setZValue(MARK_Z)
        self.marker.setVisible(False)
        self.label = pg.TextItem("", color="#0d0e10", fill=pg.mkBrush("#ffffffd0"), anchor=(-0.15, 1.1))
        self.label.setZValue(MARK_Z)
        self.label.setVisible(False)
        self.frame = QGraphicsRectItem()          # the part of the scene the model saw: the map's extent
        pen = QPen(QColor(255, 255, 255, 150), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.frame.setPen(pen)
        self.frame.setZValue(MARK_Z)
        self.frame.setVisible(False)
        for item in (self.image, self.marker, self.label, self.frame):
            view.vb.addItem(item, ignoreBounds=True)

    def show(self, rgba: np.ndarray, rect: QRectF, peak, word: str) -> None:
        """``rgba``: the coloured map (h, w, 4) to lie exactly on ``rect`` (scene pixels);
        ``peak``: (x, y) scene pixels of its peak."""
        self.image.setImage(rgba, autoLevels=False, levels=None)
        self.image.setRect(rect)
        self.image.setVisible(True)
        self.frame.setRect(rect)
        self.frame.setVisible(True)
        self.marker.setData([peak[0]], [peak[1]])
        self.marker.setVisible(True)
        self.label.setText(word)
        self.label.setPos(peak[0], peak[1])
        self.label.setVisible(True)

    def restyle(self, rgba: np.ndarray) -> None:
        """New colours for the map shown (same place)."""
        if self.image.isVisible():
            self.image.setImage(rgba, autoLevels=False, levels=None)

    def clear(self) -> None:
        self.image.setVisible(False)
        self.image.clear()
        self.marker.setVisible(False)
        self.label.setVisible(False)
        self.frame.setVisible(False)


def heat_rgba(heat: np.ndarray, colormap: str, opacity: float, threshold: float) -> np.ndarray:
    """The upsampled map in colour (the PNG export's colours): below ``threshold`` and off the
    grid transparent."""
    return colorize(heat, colormap, opacity, threshold)
