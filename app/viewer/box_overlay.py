"""Boxes and position regions from a model's answer, drawn on a scene view with their labels."""

from __future__ import annotations

from typing import List

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

BOX_COLOR = QColor("#35d0ff")
POSITION_COLOR = QColor(255, 176, 0, 60)


class BoxOverlay:
    """Owns the items it adds to one SceneView's ViewBox."""

    def __init__(self, view):
        self.view = view
        self.items: List = []

    def clear(self) -> None:
        for item in self.items:
            self.view.vb.removeItem(item)
        self.items = []

    def set_boxes(self, boxes, describe=None) -> None:
        """``boxes``: SceneBox objects (full-resolution pixels); ``describe(box) -> str`` a tooltip."""
        self.clear()
        for b in boxes:
            x0, y0, x1, y1 = b.box
            rect = QGraphicsRectItem(QRectF(x0, y0, max(x1 - x0, 1.0), max(y1 - y0, 1.0)))
            if b.kind == "position":
                rect.setPen(QPen(QColor(255, 176, 0), 0, Qt.PenStyle.DashLine))
                rect.setBrush(QBrush(POSITION_COLOR))
            else:
                pen = QPen(BOX_COLOR, 2)
                pen.setCosmetic(True)
                rect.setPen(pen)
            rect.setZValue(15)
            if describe is not None:
                rect.setToolTip(describe(b))
            self.view.vb.addItem(rect, ignoreBounds=True)
            self.items.append(rect)
            if b.label:
                fill = pg.mkBrush(BOX_COLOR if b.kind == "box" else "#ffb000")
                text = pg.TextItem(b.label, color="#0d0e10", fill=fill, anchor=(0, 1))
                text.setPos(x0, y0)
                text.setZValue(16)
                self.view.vb.addItem(text, ignoreBounds=True)
                self.items.append(text)
