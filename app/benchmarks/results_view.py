"""The runs of a runs folder as a sortable table, and the side-by-side comparison of selected runs.

``load_runs(folder)`` runs on a worker (it reads every run's files); ``RunsTableView.set_runs``
shows its rows. ``ComparisonView.show_table`` shows ``services.benchmarks.compare_runs``' table
with its Δ rows coloured (better: green, worse: red).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sarlang_core.services.benchmarks import CAPTION_METRICS

from .charts import apps_of, short_app

SORT = Qt.ItemDataRole.UserRole + 1
RUN_DIR = Qt.ItemDataRole.UserRole + 2
FIXED = ("Name", "Task", "Model", "Train strategy", "Pre", "Status", "Predicted")
STATE_COLOURS = {"complete": "#5cc08a", "generated": "#8fb8e6", "partial": "#f0a050", "new": "#9aa3ad",
                 "failed": "#e06c75", "running": "#35d0ff"}


def load_runs(folder: str) -> List[dict]:
    """Worker side: each run's summary and metrics (newest first)."""
    from sarlang_core.errors import SarlangError
    from sarlang_core.services import benchmarks

    rows = []
    for s in benchmarks.list_runs(folder):
        try:
            metrics = benchmarks.run_metrics(s.run_dir)
        except SarlangError:   # the folder changed under us: the run still shows, without scores
            metrics = None
        rows.append({"summary": s, "metrics": metrics})
    return rows


def _status_text(s) -> tuple:
    st, outcome = s.status, (s.status.outcome or {})
    state = "failed" if outcome.get("state") == "failed" else st.state
    text = {"complete": "complete", "generated": "generated, not scored", "partial": "partial", "new": "new",
            "failed": "failed"}[state]
    if state in ("partial", "failed", "new") or st.failed:
        text += f" · {st.failed} failed" if st.failed else ""
    tip = outcome.get("message") or ""
    if state in ("partial", "generated"):
        tip = (tip + "\n" if tip else "") + "Select it and press Resume to finish it."
    return state, text, tip


def _item(text: str, sort=None, align_right: bool = False) -> QStandardItem:
    it = QStandardItem(text)
    it.setEditable(False)
    it.setData(sort if sort is not None else text.lower(), SORT)
    if align_right:
        it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return it


def _score(value: Optional[float]) -> QStandardItem:
    return _item("–" if value is None else f"{100.0 * value:.2f}", -1.0 if value is None else float(value), True)


class RunsTableView(QTableView):
    """Sortable, multi-select; ``runsSelected(list of run folders)`` follows the selection."""

    runsSelected = Signal(list)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._order: List[str] = []
        self.setObjectName("RunsTableView")
        self.table = QStandardItemModel(self)
        self.table.setSortRole(SORT)
        self.setModel(self.table)
        self.setSortingEnabled(True)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(24)
        self.horizontalHeader().setHighlightSections(False)
        self.horizontalHeader().setStretchLastSection(False)
        self.rows: List[dict] = []
        self.columns: List[str] = []
        self._sorted = False

    def set_runs(self, rows: Sequence[dict]) -> None:
        keep = set(self.selected_runs())
        self.rows = list(rows)
        metrics = [r["metrics"] for r in rows if r["metrics"]]
        has_caption = any(r["summary"].task == "caption" for r in rows)
        has_vqa = any(r["summary"].task == "vqa" for r in rows)
        apps = apps_of(metrics)
        # VQA's few columns first: with both tasks in a folder, the accuracy stays in view
        self.columns = list(FIXED) + (["Accuracy"] + [short_app(a).capitalize() for a in apps] if has_vqa else []) \
            + ([label for _, label in CAPTION_METRICS] if has_caption else [])
        header = self.horizontalHeader()
        sort_col, sort_order = header.sortIndicatorSection(), header.sortIndicatorOrder()
        self.setSortingEnabled(False)
        self.table.clear()
        self.table.setHorizontalHeaderLabels(self.columns)
        for r in rows:
            self.table.appendRow(self._row(r, has_caption, has_vqa, apps))
        self.setSortingEnabled(True)
        if self._sorted and 0 <= sort_col < len(self.columns):
            self.sortByColumn(sort_col, sort_order)
        else:
            header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.resizeColumnsToContents()
        for c in range(len(FIXED), len(self.columns)):
            self.setColumnWidth(c, max(self.columnWidth(c), 64))
        header.sectionClicked.connect(self._sorted_by_user, Qt.ConnectionType.UniqueConnection)
        self.select_runs(keep)

    def _sorted_by_user(self, _col: int) -> None:
        self._sorted = True

    def _row(self, r: dict, has_caption: bool, has_vqa: bool, apps: List[str]) -> List[QStandardItem]:
        s, m = r["summary"], r["metrics"] or {}
        state, status, tip = _status_text(s)
        name = _item(s.name)
        name.setData(str(s.run_dir), RUN_DIR)
        name.setToolTip(str(s.run_dir))
        status_item = _item(status, status)
        status_item.setForeground(QBrush(QColor(STATE_COLOURS.get(state, "#d6dae0"))))
        status_item.setToolTip(tip)
        pre = _item("✓" if s.preprocessed else "✗")
        pre.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        pre.setToolTip("images went through a preprocessing Pipeline" if s.preprocessed else "images as stored")
        items = [name, _item(s.task), _item(s.model), _item(s.train_strategy), pre, status_item,
                 _item(f"{s.status.done}/{s.status.total}", s.status.done / max(1, s.status.total), True)]
        if has_vqa:
            v = m.get("vqa") or {}
            items.append(_score(v.get("accuracy")))
            items += [_score(v.get("by_application", {}).get(a, {}).get("accuracy")) for a in apps]
        if has_caption:
            block = (m.get("caption") or {}).get("all", {})
            items += [_score(block.get(k)) for k, _ in CAPTION_METRICS]
        return items

    # -- selection ----------------------------------------------------------------------------------
    def selected_runs(self) -> List[str]:
        """The selected run folders in the order they were selected (the first is a comparison's baseline)."""
        if self.selectionModel() is None:
            return []
        rows = sorted({i.row() for i in self.selectionModel().selectedRows()})
        dirs = [self.table.item(r, 0).data(RUN_DIR) for r in rows]
        self._order = [d for d in self._order if d in dirs] + [d for d in dirs if d not in self._order]
        return list(self._order)

    def select_runs(self, run_dirs) -> None:
        from PySide6.QtCore import QItemSelectionModel

        wanted = [str(Path(d)) for d in run_dirs]
        sel = self.selectionModel()
        sel.clearSelection()
        self._order = []
        rows = {self.table.item(r, 0).data(RUN_DIR): r for r in range(self.table.rowCount())}
        for d in wanted:
            if d in rows:
                sel.select(self.table.index(rows[d], 0), QItemSelectionModel.SelectionFlag.Select |
                           QItemSelectionModel.SelectionFlag.Rows)

    def selectionChanged(self, selected, deselected) -> None:
        super().selectionChanged(selected, deselected)
        self.runsSelected.emit(self.selected_runs())

    def metrics_of(self, run_dirs: Sequence[str]) -> List[dict]:
        by_dir = {str(r["summary"].run_dir): r["metrics"] for r in self.rows}
        return [by_dir[d] for d in run_dirs if by_dir.get(d)]

    def summary_of(self, run_dir: str):
        for r in self.rows:
            if str(r["summary"].run_dir) == str(run_dir):
                return r["summary"]
        return None


class ComparisonView(QWidget):
    """The paper's Tables 10/11 for the selected runs: the first is the baseline, Δ rows below."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ComparisonView")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        self.note = QLabel("Select two or more scored runs of one task and press Compare.", objectName="compare_note",
                           wordWrap=True)
        self.note.setStyleSheet("color: #9aa3ad;")
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.grid = QTableWidget(objectName="compare_table")
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.verticalHeader().hide()
        self.grid.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.note)
        lay.addWidget(self.grid, 1)
        self.table = None

    def show_table(self, table, names: Sequence[str]) -> None:
        self.table = table
        self.note.setText("Baseline: " + names[0] + " (the run selected first) · Δ rows in percentage points against it"
                          + ("\n" + "\n".join(table.notes) if table.notes else ""))
        self.grid.clear()
        self.grid.setColumnCount(len(table.header))
        self.grid.setRowCount(len(table.rows))
        self.grid.setHorizontalHeaderLabels(list(table.header))
        first_metric = next((i for i, h in enumerate(table.header) if h in ("Accuracy", "BLEU_1")), len(table.header))
        for r, row in enumerate(table.rows):
            is_delta = any(str(c).startswith("Δ") for c in row)
            for c, text in enumerate(row):
                it = QTableWidgetItem(str(text))
                if c >= first_metric:
                    it.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if is_delta:
                    it.setBackground(QBrush(QColor("#1a1d22")))
                    if c >= first_metric and str(text)[:1] in "+-" and str(text) not in ("+0.00", "-0.00"):
                        it.setForeground(QBrush(QColor("#5cc08a" if str(text).startswith("+") else "#e06c75")))
                    elif c < first_metric:
                        it.setForeground(QBrush(QColor("#9aa3ad")))
                self.grid.setItem(r, c, it)

    def show_message(self, text: str) -> None:
        self.table = None
        self.note.setText(text)
        self.grid.clear()
        self.grid.setRowCount(0)
        self.grid.setColumnCount(0)
