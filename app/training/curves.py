"""Live training curves (pyqtgraph): the loss (and the evaluation loss as points) and the learning
rate against the optimizer step. The run in flight is drawn bright; the runs selected in the runs
list are laid over it, one colour each, to compare them."""

from __future__ import annotations

import html
from typing import Dict, List, Optional, Sequence, Tuple

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from app.benchmarks.charts import AXIS, BACKGROUND, COLOURS, TEXT

LIVE = "#4C9BE8"
EVAL = "#F0A050"
OVERLAYS = COLOURS[2:] + COLOURS[:2]     # the live blue and the eval orange stay the live run's


class StepAxis(pg.AxisItem):
    """Optimizer steps are whole numbers: no tick at step 1.5."""

    def tickValues(self, minVal, maxVal, size):
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        return levels or [(1.0, [float(v) for v in range(int(minVal), int(maxVal) + 1)])]

    def tickStrings(self, values, scale, spacing):
        return [f"{int(v):,}" for v in values]


def _plot(title: str, ylabel: str) -> pg.PlotWidget:
    w = pg.PlotWidget(background=BACKGROUND, axisItems={"bottom": StepAxis("bottom")})
    item = w.getPlotItem()
    item.setTitle(title, color=TEXT, size="10pt")
    item.setMenuEnabled(False)
    item.showGrid(x=True, y=True, alpha=0.2)
    font = QFont()
    font.setPointSize(8)
    for side in ("left", "bottom"):
        ax = item.getAxis(side)
        ax.setPen(pg.mkPen(AXIS))
        ax.setTextPen(pg.mkPen(TEXT))
        ax.setStyle(tickFont=font)
    item.setLabel("bottom", "optimizer step", color=TEXT)
    item.setLabel("left", ylabel, color=TEXT)
    return w


class Series:
    """One run's points: step -> value, kept in step order; a step written again replaces the old one
    and drops what came after it (a resumed run repeats the steps after its checkpoint)."""

    def __init__(self) -> None:
        self.loss: Dict[int, float] = {}
        self.lr: Dict[int, float] = {}
        self.eval: Dict[int, float] = {}

    def add(self, event: dict) -> None:
        step = int(event.get("step") or 0)
        kind = event.get("event")
        if kind == "step":
            for d in (self.loss, self.lr, self.eval):
                for s in [s for s in d if s >= step]:
                    del d[s]
            if event.get("loss") is not None:
                self.loss[step] = float(event["loss"])
            if event.get("lr") is not None:
                self.lr[step] = float(event["lr"])
        elif kind == "eval" and event.get("eval_loss") is not None:
            self.eval[step] = float(event["eval_loss"])

    @staticmethod
    def xy(d: Dict[int, float]) -> Tuple[List[int], List[float]]:
        steps = sorted(d)
        return steps, [d[s] for s in steps]


def series_of(events: Sequence[dict]) -> Series:
    s = Series()
    for e in events:
        s.add(e)
    return s


class TrainingCurvesView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TrainingCurvesView")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        self.legend = QLabel("", objectName="curves_legend", wordWrap=True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.legend)
        row = QHBoxLayout()
        self.loss_plot = _plot("Training loss", "loss")
        self.lr_plot = _plot("Learning rate", "lr")
        self.lr_plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        row.addWidget(self.loss_plot, 3)
        row.addWidget(self.lr_plot, 2)
        lay.addLayout(row, 1)
        self.live: Optional[Series] = None
        self.live_name = ""
        self.overlays: List[Tuple[str, Series]] = []
        pen = pg.mkPen(LIVE, width=2)
        self.live_loss = pg.PlotDataItem([], [], pen=pen, symbol="o", symbolSize=4, symbolBrush=LIVE,
                                         symbolPen=None)
        self.live_eval = pg.ScatterPlotItem([], [], size=9, brush=pg.mkBrush(EVAL), pen=pg.mkPen("#14161a"),
                                            symbol="d")
        self.live_lr = pg.PlotDataItem([], [], pen=pen)
        self._overlay_items: list = []
        self._empty: list = []
        self._redraw_overlays()
        self._legend()

    # -- the run in flight --------------------------------------------------------------------------
    def start_live(self, name: str, history: Sequence[dict] = ()) -> None:
        """Draw a new live run (``history``: the events of the run being resumed)."""
        self.live, self.live_name = series_of(history), name
        for plot, item in ((self.loss_plot, self.live_loss), (self.loss_plot, self.live_eval),
                           (self.lr_plot, self.live_lr)):
            if item.scene() is None:
                plot.addItem(item)
        self._draw_live()
        self._legend()

    def add_event(self, event: dict) -> None:
        if self.live is None or event.get("event") not in ("step", "eval"):
            return
        had_eval = bool(self.live.eval)
        self.live.add(event)
        self._draw_live()
        if bool(self.live.eval) != had_eval:
            self._legend()

    def clear_live(self) -> None:
        self.live, self.live_name = None, ""
        for plot, item in ((self.loss_plot, self.live_loss), (self.loss_plot, self.live_eval),
                           (self.lr_plot, self.live_lr)):
            if item.scene() is not None:
                plot.removeItem(item)
        self._legend()

    def _draw_live(self) -> None:
        s = self.live or Series()
        self.live_loss.setData(*s.xy(s.loss))
        self.live_eval.setData(*s.xy(s.eval))
        self.live_lr.setData(*s.xy(s.lr))
        self._show_empty_state()

    def live_points(self) -> List[Tuple[int, float]]:
        """The live loss curve's points, as drawn."""
        xs, ys = self.live_loss.getData()
        return [] if xs is None else list(zip((int(x) for x in xs), (float(y) for y in ys)))

    # -- runs laid over -----------------------------------------------------------------------------
    def set_overlays(self, runs: Sequence[Tuple[str, Sequence[dict]]]) -> None:
        """``runs``: (name, events) of the selected runs (not the live one)."""
        self.overlays = [(name, series_of(events)) for name, events in runs]
        self._redraw_overlays()
        self._legend()

    def _redraw_overlays(self) -> None:
        for plot, item in self._overlay_items:
            plot.removeItem(item)
        self._overlay_items = []
        for k, (_name, s) in enumerate(self.overlays):
            colour = OVERLAYS[k % len(OVERLAYS)]
            pen = pg.mkPen(colour, width=1.5)
            items = [(self.loss_plot, pg.PlotDataItem(*s.xy(s.loss), pen=pen)),
                     (self.lr_plot, pg.PlotDataItem(*s.xy(s.lr), pen=pen))]
            if s.eval:
                items.append((self.loss_plot, pg.ScatterPlotItem(*s.xy(s.eval), size=8, brush=pg.mkBrush(colour),
                                                                 pen=pg.mkPen("#14161a"), symbol="d")))
            for plot, item in items:
                plot.addItem(item)
            self._overlay_items += items

    def overlay_points(self) -> Dict[str, List[Tuple[int, float]]]:
        return {name: list(zip(*s.xy(s.loss))) for name, s in self.overlays}

    def _show_empty_state(self) -> None:
        """Empty plots say so instead of showing a 0-1 grid."""
        empty = not (self.live is not None and (self.live.loss or self.live.eval)) and \
            not any(s.loss for _n, s in self.overlays)
        if empty == bool(self._empty):
            return
        for plot, item in self._empty:
            plot.removeItem(item)
        self._empty = []
        for plot, text in ((self.loss_plot, "no steps yet"), (self.lr_plot, "")):
            pi = plot.getPlotItem()
            for side in ("left", "bottom"):
                pi.showAxis(side, not empty)
            pi.showGrid(x=not empty, y=not empty, alpha=0.2)
            if empty:
                pi.setXRange(0, 1, padding=0)
                pi.setYRange(0, 1, padding=0)
                label = pg.TextItem(text, color=AXIS, anchor=(0.5, 0.5))
                label.setPos(0.5, 0.5)
                plot.addItem(label)
                self._empty.append((plot, label))
            else:
                pi.enableAutoRange()

    def _legend(self) -> None:
        self._show_empty_state()
        parts = []
        if self.live is not None:
            parts.append(f'<span style="color:{LIVE}">━</span> {html.escape(self.live_name)}')
            if self.live.eval:
                parts.append(f'<span style="color:{EVAL}">◆</span> its evaluation loss')
        for k, (name, s) in enumerate(self.overlays):
            last = f" ({s.loss[max(s.loss)]:.4f})" if s.loss else " (no steps yet)"
            parts.append(f'<span style="color:{OVERLAYS[k % len(OVERLAYS)]}">━</span> {html.escape(name)}{last}')
        if not parts:
            parts.append(f'<span style="color:{AXIS}">Start a run to follow its loss live, or select runs below '
                         "to compare their curves.</span>")
        self.legend.setText(" &nbsp;&nbsp; ".join(parts))
