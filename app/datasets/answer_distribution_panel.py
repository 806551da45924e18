"""The most common answers per item type, as a bar plot and a table (statistics dock, "Answers").

Question types show their top answers as horizontal bars (most frequent on top); counting shows a
histogram by number; captions a histogram of their length in words. The numbers come from
``services.datasets.answer_distribution`` on the "stats" lane, a moment after the store changes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import workers

LANE = "stats"          # its own one-thread lane: never behind a tile render or an LLM run
DEBOUNCE_MS = 600
TOP = 20
LABEL_CHARS = 26
TYPE_NAMES = {"caption_concise": "concise captions", "caption_detailed": "detailed captions"}
STATUS_CHOICES = {"all items": None, "accepted + edited": ("accepted", "edited"), "pending": "pending"}
BAR = "#35d0ff"
_NOTE_STYLE = "color: #7a828c; font-size: 9pt;"


def fetch(store_path: str, status) -> dict:
    """Worker side: {type: distribution dict} (see sarlang_core.datasets.answer_stats)."""
    from sarlang_core.services import datasets as svc

    return svc.answer_distribution(store_path, top=TOP, status=status)


def _elide(text: str, n: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


class AnswerDistributionPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("AnswerDistributionPanel")
        self.store_path: Optional[str] = None
        self.data: Optional[dict] = None
        self._rid = 0
        self._dirty = False
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.type_combo = QComboBox(objectName="answer_type")
        self.status_combo = QComboBox(objectName="answer_status")
        self.status_combo.addItems(list(STATUS_CHOICES))
        row.addWidget(QLabel("Type"))
        row.addWidget(self.type_combo, 1)
        row.addWidget(QLabel("Items"))
        row.addWidget(self.status_combo)
        lay.addLayout(row)
        self.summary = QLabel("", objectName="answer_summary", wordWrap=True)
        self.summary.setStyleSheet(_NOTE_STYLE)
        lay.addWidget(self.summary)
        self.plot = pg.PlotWidget(objectName="answer_plot")
        self.plot.setMinimumHeight(260)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        lay.addWidget(self.plot, 3)
        self.table = QTableWidget(0, 3, objectName="answer_table")
        self.table.setHorizontalHeaderLabels(["answer", "items", "share"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        lay.addWidget(self.table, 2)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self.type_combo.currentIndexChanged.connect(self._show_current)
        self.status_combo.currentIndexChanged.connect(self.refresh)

    # -- data -----------------------------------------------------------------------------------
    def set_store(self, store_path: str) -> None:
        self.store_path = str(store_path)
        self.store_changed()

    def store_changed(self) -> None:
        """Decisions, edits, bulk steps and LLM runs call this; one count follows a burst of them."""
        self._dirty = True
        if self.isVisible():
            self._timer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self._timer.start(0)

    def refresh(self) -> None:
        if self.store_path is None:
            return
        self._dirty = False
        self._rid += 1
        self.summary.setText("counting answers…")
        workers.submit(LANE, ("answers", self._rid), fetch, self.store_path,
                       STATUS_CHOICES[self.status_combo.currentText()],
                       on_result=self._ready, on_error=self._failed)

    def _ready(self, rid, data: dict) -> None:
        if rid != ("answers", self._rid):
            return   # the store changed again since: a newer count is on its way
        self.data = data
        keep = self.type_combo.currentData()
        self.type_combo.blockSignals(True)
        self.type_combo.clear()
        for t, d in data.items():
            self.type_combo.addItem(f"{TYPE_NAMES.get(t, t)} ({d['total']:,})", t)
        i = self.type_combo.findData(keep)
        self.type_combo.setCurrentIndex(i if i >= 0 else 0)
        self.type_combo.blockSignals(False)
        self._show_current()

    def _failed(self, rid, exc) -> None:
        if rid == ("answers", self._rid):
            self.summary.setText(f"cannot count answers: {exc}")

    # -- drawing --------------------------------------------------------------------------------
    def select_type(self, item_type: str) -> None:
        self.type_combo.setCurrentIndex(self.type_combo.findData(item_type))

    def _show_current(self) -> None:
        self.plot.clear()
        d = (self.data or {}).get(self.type_combo.currentData())
        if not d:
            self.summary.setText("No items with these filters." if self.data is not None else "")
            self.table.setRowCount(0)
            return
        draw = {"answers": self._answers, "numeric": self._numeric, "length": self._lengths}[d["kind"]]
        self.plot.getAxis("left").setStyle(tickTextWidth=30, autoExpandTextSpace=True)
        rows = draw(d)
        first = {"answers": "answer", "numeric": "number", "length": "length"}[d["kind"]]
        self.table.setHorizontalHeaderLabels([first, "items", "share"])
        self.table.setRowCount(len(rows))
        for r, (label, n) in enumerate(rows):
            for c, text in enumerate((label, f"{n:,}", f"{100.0 * n / max(d['total'], 1):.1f} %")):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        self.table.resizeColumnToContents(1)
        self.table.resizeColumnToContents(2)

    def _axes(self, left: str, bottom: str, left_ticks=None, bottom_ticks=None) -> None:
        self.plot.setLabel("left", left)
        self.plot.setLabel("bottom", bottom)
        self.plot.getAxis("left").setTicks(left_ticks)
        self.plot.getAxis("bottom").setTicks(bottom_ticks)

    def _answers(self, d: dict) -> list:
        top = d["top"]
        counts = np.array([a["count"] for a in top], float)
        y = np.arange(len(top))[::-1].astype(float)          # most frequent on top
        self.plot.addItem(pg.BarGraphItem(x0=0, y=y, width=counts, height=0.7, brush=BAR))
        labels = [_elide(a["answer"]) for a in top]
        metrics = self.fontMetrics()
        width = max((metrics.horizontalAdvance(t) for t in labels), default=20)
        self.plot.getAxis("left").setStyle(tickTextWidth=min(width + 6, 200), autoExpandTextSpace=False)
        self._axes("", "items", [list(zip(y, labels))], None)
        self.plot.showGrid(x=True, y=False, alpha=0.2)
        self.plot.setYRange(-0.6, max(len(top) - 0.4, 0.6), padding=0)
        self.plot.setXRange(0, max(counts.max() if len(counts) else 1, 1) * 1.05, padding=0)
        covered = 100.0 * (1.0 - d.get("other_share", 0.0))
        self.summary.setText(f"{d['total']:,} items · {d['distinct']:,} distinct answers · the top {len(top)} cover "
                             f"{covered:.1f} %")
        rows = [(a["answer"], a["count"]) for a in top]
        return rows + ([("(all other answers)", d["other"])] if d.get("other") else [])

    def _numeric(self, d: dict) -> list:
        pairs = [(int(v), int(n)) for v, n in d["numeric"]]
        x = np.array([v for v, _ in pairs], float)
        self.plot.addItem(pg.BarGraphItem(x=x, height=np.array([n for _, n in pairs], float), width=0.7, brush=BAR))
        ticks = [[(v, str(v)) for v, _ in pairs]] if len(pairs) <= 25 else None
        self._axes("items", "number in the answer", None, ticks)
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        self.plot.enableAutoRange()
        extra = f" · {d['unparsed']:,} without a number" if d.get("unparsed") else ""
        plural = "s" if len(pairs) != 1 else ""
        self.summary.setText(f"{d['total']:,} counting answers · {len(pairs)} different number{plural}{extra}")
        return [(str(v), n) for v, n in pairs] + ([("(no number)", d["unparsed"])] if d.get("unparsed") else [])

    def _lengths(self, d: dict) -> list:
        s = d["length"]
        bins = s["bins"]
        lo = np.array([b["lo"] for b in bins], float)
        hi = np.array([b["hi"] for b in bins], float)
        counts = np.array([b["count"] for b in bins], float)
        self.plot.addItem(pg.BarGraphItem(x0=lo - 0.5, x1=hi + 0.5, height=counts, brush=BAR, pen=pg.mkPen("#1c1f23")))
        self._axes("captions", "length in words", None, None)
        self.plot.showGrid(x=False, y=True, alpha=0.2)
        self.plot.enableAutoRange()
        self.summary.setText(f"{d['total']:,} captions · words: mean {s['mean']:.1f} · median {s['median']:g} · "
                             f"95 % ≤ {s['p95']} · range {s['min']}–{s['max']}")
        return [(f"{b['lo']}–{b['hi']} words" if b["hi"] != b["lo"] else f"{b['lo']} words", b["count"])
                for b in bins if b["count"]]
