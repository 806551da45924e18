"""Dataset statistics in three tabs: Overview (items per type, the paper's Table 4 view; the most
frequent categories; review progress), Answers (the most common answers per type) and Similarity
(the paper's pairwise cosine similarity of texts and images)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget

from .answer_distribution_panel import AnswerDistributionPanel
from .similarity_panel import SimilarityPanel

TOP_CATEGORIES = 30


def _bars(plot: pg.PlotWidget, labels, values, color) -> None:
    plot.clear()
    x = np.arange(len(values))
    plot.addItem(pg.BarGraphItem(x=x, height=np.asarray(values, float), width=0.7, brush=color))
    plot.getAxis("bottom").setTicks([list(zip(x, labels))])
    plot.setXRange(-0.6, max(len(values) - 0.4, 0.6), padding=0)


class DatasetStatsView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("DatasetStatsView")
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget(objectName="stats_tabs")
        outer.addWidget(self.tabs)
        overview = QWidget()
        lay = QVBoxLayout(overview)
        self.summary = QLabel("", objectName="stats_summary", wordWrap=True)
        lay.addWidget(self.summary)
        self.types = pg.PlotWidget(title="Items per question type")
        self.categories = pg.PlotWidget(title=f"Boxes per category (top {TOP_CATEGORIES})")
        for p in (self.types, self.categories):
            p.setMinimumHeight(170)
            p.showGrid(y=True, alpha=0.2)
            lay.addWidget(p)
        self.table = QTableWidget(0, 2, objectName="stats_table")
        self.table.setHorizontalHeaderLabels(["", "items"])
        lay.addWidget(self.table)
        self.answers = AnswerDistributionPanel()
        self.similarity = SimilarityPanel()
        self.tabs.addTab(overview, "Overview")
        self.tabs.addTab(self.answers, "Answers")
        self.tabs.addTab(self.similarity, "Similarity")
        self.last = None

    def set_store(self, store_path: str) -> None:
        self.answers.set_store(store_path)
        self.similarity.set_store(store_path)

    def store_changed(self) -> None:
        """Items changed (decisions, edits, bulk steps, new items): recount the answers, debounced."""
        self.answers.store_changed()

    def show_stats(self, stats: dict) -> None:
        self.last = stats
        per_type = stats.get("items_per_type", {})
        per_status = stats.get("items_per_status", {})
        cats = sorted(stats.get("boxes_per_category", {}).items(), key=lambda kv: -kv[1])[:TOP_CATEGORIES]
        total = stats.get("items", 0)
        reviewed = sum(v for k, v in per_status.items() if k != "pending")
        self.summary.setText(f"{stats.get('images', 0):,} images · {stats.get('boxes', 0):,} boxes · {total:,} items · "
                             f"reviewed {reviewed:,} ({100.0 * reviewed / max(total, 1):.1f} %)")
        _bars(self.types, [t.replace("caption_", "cap. ") for t in per_type], list(per_type.values()), "#35d0ff")
        _bars(self.categories, [c for c, _ in cats], [n for _, n in cats], "#ffb000")
        rows = [(f"status: {k}", v) for k, v in per_status.items()]
        rows += [(f"source: {k}", v) for k, v in stats.get("items_per_source", {}).items()]
        rows += [(f"flag: {k}", v) for k, v in stats.get("flags_per_code", {}).items()]
        rows += [(f"split: {k}", v) for k, v in stats.get("images_per_split", {}).items()]
        self.table.setRowCount(len(rows))
        for r, (k, v) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(str(k)))
            self.table.setItem(r, 1, QTableWidgetItem(f"{v:,}"))
        self.table.resizeColumnsToContents()
