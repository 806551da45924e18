"""Bar charts of benchmark runs (pyqtgraph): one chart per metric, one per application.

VQA: overall accuracy (and over decided answers) on the left, accuracy per application on the
right. Captions: BLEU_1..4, ROUGE_L and CIDEr on the left, one metric per caption kind on the
right. One bar colour per run, values in percent as in the report tables.
"""

from __future__ import annotations

import html
from typing import List, Optional, Sequence, Tuple

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from sarlang_core.services.benchmarks import CAPTION_METRICS, CAPTION_ROWS, applications_in

COLOURS = ("#4C9BE8", "#F0A050", "#5CC08A", "#E06C75", "#A98BE0", "#C8A060", "#E58BC8", "#9AA3AD")
BACKGROUND, AXIS, TEXT = "#14161a", "#7d8590", "#c9d1d9"


def short_app(name: str) -> str:
    """'object identification' -> 'identification' (tick labels must fit under a bar group)."""
    for prefix in ("object ", "instance ", "region ", "image "):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def apps_of(metrics: Sequence[dict]) -> List[str]:
    return applications_in(metrics)


class BarChart(pg.PlotWidget):
    """Grouped bars: groups on the x axis, one bar per series, the value printed above each bar."""

    def __init__(self, title: str, parent=None):
        super().__init__(parent, background=BACKGROUND)
        self.setObjectName("BarChart")
        self.title = title
        item = self.getPlotItem()
        item.setTitle(title, color=TEXT, size="10pt")
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=False, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        font = QFont()
        font.setPointSize(8)
        for side in ("left", "bottom"):
            ax = item.getAxis(side)
            ax.setPen(pg.mkPen(AXIS))
            ax.setTextPen(pg.mkPen(TEXT))
            ax.setStyle(tickFont=font)
        self.values: List[Tuple[str, List[Optional[float]]]] = []

    def show_bars(self, groups: Sequence[str], series: Sequence[Tuple[str, Sequence[Optional[float]]]],
                  xlabel: str, ylabel: str, title: Optional[str] = None, percent: bool = True) -> None:
        """Values are fractions (0-1) drawn ×100. With ``percent`` the axis is a fixed 0-100 % scale, so a
        run scoring under 1 % does not get an axis reading 0-1 under a "(%)" label."""
        item = self.getPlotItem()
        item.clear()
        if title:
            item.setTitle(title, color=TEXT, size="10pt")
        self.values = [(name, list(vals)) for name, vals in series]
        item.setLabel("bottom", xlabel, color=TEXT)
        item.setLabel("left", ylabel, color=TEXT)
        item.showAxis("left")
        item.showAxis("bottom")
        n = max(1, len(series))
        width = 0.8 / n
        top = 0.0
        for k, (_name, values) in enumerate(series):
            colour = QColor(COLOURS[k % len(COLOURS)])
            xs = [g + (k - (n - 1) / 2) * width for g in range(len(groups))]
            ys = [0.0 if v is None else 100.0 * v for v in values]
            top = max([top] + ys)
            bars = pg.BarGraphItem(x=xs, height=ys, width=width * 0.9, brush=colour, pen=pg.mkPen(colour.darker(130)))
            item.addItem(bars)
            for x, y, v in zip(xs, ys, values):
                label = pg.TextItem("n/a" if v is None else f"{100.0 * v:.1f}", color=TEXT, anchor=(0.5, 1.0))
                label.setFont(QFont(label.textItem.font().family(), 7))
                label.setPos(x, y)
                item.addItem(label)
        item.getAxis("bottom").setTicks([[(i, g) for i, g in enumerate(groups)]])
        item.setXRange(-0.6, len(groups) - 0.4, padding=0)
        left = item.getAxis("left")
        if percent:
            left.setTicks([[(v, f"{v}") for v in range(0, 101, 20)], [(v, "") for v in range(10, 100, 20)]])
            item.setYRange(0, 100 * 1.08, padding=0)   # headroom for the value printed over a 100 % bar
        else:
            left.setTicks(None)
            item.setYRange(0, max(1.0, top) * 1.12, padding=0)

    def clear_bars(self, message: str = "") -> None:
        item = self.getPlotItem()
        item.clear()
        self.values = []
        item.hideAxis("left")
        item.hideAxis("bottom")
        item.setXRange(0, 1, padding=0)
        item.setYRange(0, 1, padding=0)
        if message:
            t = pg.TextItem(message, color=AXIS, anchor=(0.5, 0.5))
            item.addItem(t)
            t.setPos(0.5, 0.5)


def run_label(m: dict) -> str:
    r = m.get("run", {})
    name, model = r.get("name") or "?", r.get("model") or ""
    return name if not model or model in name else f"{name} · {model}"


class BenchmarkChartsView(QWidget):
    """The charts of the selected runs (``set_runs(metrics list)``)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("BenchmarkChartsView")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.note = QLabel("Select one or more scored runs to chart them.", objectName="charts_note")
        self.note.setStyleSheet("color: #9aa3ad;")
        row.addWidget(self.note, 1)
        self.metric_label = QLabel("Per caption kind:")
        self.metric_box = QComboBox(objectName="caption_metric")
        for key, label in CAPTION_METRICS:
            self.metric_box.addItem(label, key)
        self.metric_box.setCurrentIndex(self.metric_box.findData("CIDEr"))
        self.metric_box.currentIndexChanged.connect(self._redraw)
        row.addWidget(self.metric_label)
        row.addWidget(self.metric_box)
        lay.addLayout(row)
        charts = QHBoxLayout()
        self.per_metric = BarChart("Per metric")
        self.per_app = BarChart("Per application")
        charts.addWidget(self.per_metric, 2)
        charts.addWidget(self.per_app, 3)
        lay.addLayout(charts, 1)
        self.metrics: List[dict] = []
        self._notes: List[str] = []
        self.set_runs([])

    def set_runs(self, metrics: Sequence[dict], unscored: Sequence[str] = ()) -> None:
        """Chart the runs' metrics (one task: runs of another task than the first are left out);
        ``unscored``: names of selected runs without metrics yet, to say why they are missing."""
        metrics = [m for m in metrics if m and (m.get("vqa") or m.get("caption"))]
        notes = []
        if metrics:
            task = metrics[0].get("run", {}).get("task")
            kept = [m for m in metrics if m.get("run", {}).get("task") == task]
            if len(kept) < len(metrics):
                notes.append(f"{len(metrics) - len(kept)} run(s) of another task left out")
            metrics = kept
        if unscored:
            notes.append(f"not scored yet: {', '.join(unscored)} (Resume finishes and scores a run)")
        self.metrics, self._notes = metrics, notes
        self._redraw()

    def _legend_html(self) -> str:
        items = [f'<span style="color:{COLOURS[k % len(COLOURS)]}">■</span> {html.escape(run_label(m))}'
                 for k, m in enumerate(self.metrics)]
        notes = "".join(f' &nbsp;<span style="color:#f0a050">· {html.escape(n)}</span>' for n in self._notes)
        return "&nbsp;&nbsp;&nbsp;".join(items) + notes

    def _redraw(self) -> None:
        metrics = self.metrics
        caption = bool(metrics) and bool(metrics[0].get("caption"))
        self.metric_label.setVisible(caption)
        self.metric_box.setVisible(caption)
        if not metrics:
            why = "; ".join(self._notes) or "select one or more scored runs to chart them"
            self.note.setText(html.escape(why[0].upper() + why[1:]))
            self.per_metric.clear_bars("no scores to show")
            self.per_app.clear_bars("no scores to show")
            return
        self.note.setText(self._legend_html())
        if caption:
            keys = [(k, label) for k, label in CAPTION_METRICS if k != "CIDEr"]   # CIDEr (x100) has its own scale
            self.per_metric.show_bars([label for _, label in keys],
                                      [(run_label(m), [m["caption"].get("all", {}).get(k) for k, _ in keys])
                                       for m in metrics], "metric", "score (%)", "BLEU and ROUGE_L, all caption kinds")
            key, label = self.metric_box.currentData(), self.metric_box.currentText()
            kinds = [(c, lab) for c, lab in CAPTION_ROWS
                     if any(c in m["caption"].get("by_type", {}) for m in metrics)]
            by_kind = [(run_label(m), [m["caption"].get("by_type", {}).get(c, {}).get(key) for c, _ in kinds])
                       for m in metrics]
            axis = f"{label} (×100)" if key == "CIDEr" else f"{label} (%)"
            self.per_app.show_bars([lab for _, lab in kinds], by_kind, "caption kind", axis,
                                   f"{label} per caption kind", percent=key != "CIDEr")
            return
        self.per_metric.show_bars(["Accuracy", "Decided only"],
                                  [(run_label(m), [m["vqa"].get("accuracy"), m["vqa"].get("accuracy_decided")])
                                   for m in metrics], "metric", "accuracy (%)", "VQA accuracy")
        apps = apps_of(metrics)
        self.per_app.show_bars([short_app(a) for a in apps],
                               [(run_label(m), [m["vqa"].get("by_application", {}).get(a, {}).get("accuracy")
                                                for a in apps]) for m in metrics],
                               "application", "accuracy (%)", "VQA accuracy per application")
