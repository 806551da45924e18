"""Region statistics before and after filtering: how much speckle went, and what it cost."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

ROWS = [("mean", "Mean (intensity)"), ("std", "Std"), ("enl", "ENL = mean²/var"), ("mean_db", "Mean (dB)"),
        ("pixels", "Pixels")]


def _fmt(value) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{value:.3g}"


class RegionStatsPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("RegionStatsPanel")
        layout = QVBoxLayout(self)
        self.draw = QPushButton("Draw region (R)", objectName="draw_region")
        self.draw.setToolTip("Add a rectangle on the scene; drag or resize it to measure another area")
        layout.addWidget(self.draw)
        self.table = QTableWidget(len(ROWS), 2, objectName="stats_table")
        self.table.setHorizontalHeaderLabels(["Before", "After"])
        self.table.setVerticalHeaderLabels([label for _, label in ROWS])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(150)
        self.table.verticalHeader().setDefaultSectionSize(22)
        layout.addWidget(self.table)
        self.summary = QLabel("Draw a rectangle over a homogeneous area to see the speckle reduction (ENL), "
                              "or over a target to see whether it was flattened.", objectName="stats_summary",
                              wordWrap=True)
        self.summary.setStyleSheet("color: #9aa3ad;")
        layout.addWidget(self.summary)
        layout.addStretch(1)
        self.last = None

    def show_stats(self, pair, rect_text: str = "") -> None:
        self.last = pair
        for r, (key, _) in enumerate(ROWS):
            for c, side in enumerate((pair.before, pair.after)):
                item = QTableWidgetItem(_fmt(getattr(side, key)))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        level = f" (overview level {pair.level})" if pair.level else ""
        gain = pair.enl_gain
        self.summary.setText(f"{rect_text}{level}\nENL ×{gain:.2f} after filtering; mean changed by "
                             f"{_pct(pair.before.mean, pair.after.mean)}.")

    def clear(self, message: str = "") -> None:
        self.last = None
        self.table.clearContents()
        if message:
            self.summary.setText(message)


def _pct(a: float, b: float) -> str:
    if not a or math.isnan(a) or math.isnan(b):
        return "–"
    return f"{100.0 * (b - a) / a:+.1f} %"
