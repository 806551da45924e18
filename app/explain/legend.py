"""The explain panel's drawn parts: the colour bar of the map shown, and relative bars behind the
words of an answer in its list."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QWidget

from sarlang_core.services.explain import colorize

RELATIVE_ROLE = Qt.ItemDataRole.UserRole + 1     # the word's peak / the answer's highest peak, 0..1
PEAK_ROLE = Qt.ItemDataRole.UserRole + 2         # the raw peak, shown as a number


class ColourBar(QWidget):
    """A horizontal 0-1 colour ramp of the colormap in use; values under the threshold (not drawn
    on the scene) hatched over; ticks at 0, 0.25 ... 1."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("colour_bar")
        self.setMinimumHeight(34)
        self.colormap = "inferno"
        self.threshold = 0.0
        self._ramp = QImage()
        self.set_style("inferno", 0.0)

    def set_style(self, colormap: str, threshold: float) -> None:
        self.colormap, self.threshold = colormap, float(threshold)
        rgba = colorize(np.tile(np.linspace(0, 1, 256, dtype=np.float32), (2, 1)), colormap, 1.0)
        rgba = np.ascontiguousarray(rgba)
        self._ramp = QImage(rgba.data, 256, 2, 256 * 4, QImage.Format.Format_RGBA8888).copy()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(240, 36)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        bar = QRectF(8, 2, max(10, self.width() - 16), 14)
        p.drawImage(bar, self._ramp)
        if self.threshold > 0:
            cut = QRectF(bar.left(), bar.top(), bar.width() * min(self.threshold, 1.0), bar.height())
            p.fillRect(cut, QColor(20, 22, 26, 200))
            p.fillRect(cut, Qt.BrushStyle.BDiagPattern)
        p.setPen(QPen(QColor("#5a616b")))
        p.drawRect(bar)
        font = QFont(self.font())
        font.setPointSizeF(8)
        p.setFont(font)
        p.setPen(QColor("#c8ccd2"))
        for i in range(5):
            v = i / 4
            x = bar.left() + v * bar.width()
            p.drawLine(int(x), int(bar.bottom()), int(x), int(bar.bottom()) + 3)
            text = f"{v:g}"
            w = p.fontMetrics().horizontalAdvance(text)
            left = min(max(x - w / 2, 0), self.width() - w)
            p.drawText(QRect(int(left), int(bar.bottom()) + 3, w + 2, 14), Qt.AlignmentFlag.AlignLeft, text)
        p.end()


class WordBarDelegate(QStyledItemDelegate):
    """A word, a bar as long as its peak relative to the answer's highest, and the peak itself."""

    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.fillRect(r, QColor("#2f6fb3") if selected else QColor("#14161a"))
        rel = index.data(RELATIVE_ROLE)
        word_w = min(120, r.width() // 3)
        num_w = 62
        bar = QRect(r.left() + word_w + 6, r.top() + 5, max(4, r.width() - word_w - num_w - 12), r.height() - 10)
        painter.fillRect(bar, QColor("#24282d"))
        if rel is not None:
            filled = QRect(bar.left(), bar.top(), max(1, int(bar.width() * float(rel))), bar.height())
            painter.fillRect(filled, QColor("#ffb000") if selected else QColor("#e0902a"))
        painter.setPen(QColor("#ffffff") if selected else QColor("#d6dae0"))
        text_rect = QRect(r.left() + 6, r.top(), word_w - 4, r.height())
        text = painter.fontMetrics().elidedText(index.data(Qt.ItemDataRole.DisplayRole) or "",
                                                Qt.TextElideMode.ElideRight, text_rect.width())
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, text)
        peak = index.data(PEAK_ROLE)
        if peak is not None:
            painter.setPen(QColor("#ffffff") if selected else QColor("#9aa3ad"))
            painter.drawText(QRect(r.right() - num_w, r.top(), num_w - 4, r.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{float(peak):.3g}")
        painter.restore()

    def sizeHint(self, option, index) -> QSize:
        return QSize(200, max(22, option.fontMetrics.height() + 8))
