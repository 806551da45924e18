"""The runs of the runs folder: name, status, step, last loss, model and dataset; select several to
lay their loss curves over each other, one to merge, register, export or benchmark its adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.benchmarks.run_queue import section_title

COLUMNS = ("Run", "Status", "Step", "Loss", "Model", "Dataset")
STATUS_TEXT = {"running": "▶ running", "finished": "✓ finished", "stopped": "■ stopped", "failed": "⚠ failed",
               "created": "created", "missing": "?"}
STATUS_COLOURS = {"running": "#8fb8e6", "finished": "#98c379", "stopped": "#e5c07b", "failed": "#e06c75",
                  "created": "#9aa3ad", "missing": "#9aa3ad"}
RUN_DIR = Qt.ItemDataRole.UserRole


def _short(path: str) -> str:
    return Path(path).name or path


class TrainRunsPanel(QWidget):
    runsSelected = Signal(list)         # run folders, in selection order

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("TrainRunsPanel")
        self.summaries: Dict[str, object] = {}
        self._build()
        self._selection_changed()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        head = QHBoxLayout()
        head.addWidget(section_title("Runs", "runs_title"))
        self.count_label = QLabel("", objectName="runs_count")
        self.count_label.setStyleSheet("color: #9aa3ad;")
        head.addWidget(self.count_label)
        head.addStretch(1)
        lay.addLayout(head)
        t = self.table = QTableWidget(0, len(COLUMNS), objectName="train_runs_table")
        t.setHorizontalHeaderLabels(COLUMNS)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setWordWrap(False)
        t.setShowGrid(False)
        t.setAlternatingRowColors(True)
        t.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        t.verticalHeader().hide()
        t.verticalHeader().setDefaultSectionSize(24)
        h = t.horizontalHeader()
        h.setHighlightSections(False)
        for c, mode in enumerate((QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Fixed,
                                  QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Stretch)):
            h.setSectionResizeMode(c, mode)
        t.setColumnWidth(0, 190)
        t.setColumnWidth(1, 104)
        t.setColumnWidth(4, 150)
        t.itemSelectionChanged.connect(self._selection_changed)
        lay.addWidget(t, 1)
        self.empty = QLabel("", objectName="runs_empty", wordWrap=True)
        self.empty.setStyleSheet("color: #9aa3ad; padding: 2px 4px;")
        lay.addWidget(self.empty)
        row = QHBoxLayout()
        self.buttons: Dict[str, QPushButton] = {}
        for text, name, tip in (
                ("Use settings", "use_settings", "Put the selected run's settings into the form"),
                ("Open folder", "open_folder", "The run folder in the file manager"),
                ("", "", ""),
                ("Merge…", "merge", "Merge the adapter into its base model: a standalone model folder"),
                ("Register…", "register", "Add the adapter (on its base) to the model registry: the chat and the "
                                          "benchmark window list it at once"),
                ("Export for LLaMA-Factory…", "export", "A LLaMA-Factory YAML (and dataset) reproducing the run"),
                ("Benchmark adapter…", "benchmark", "Queue base and base + LoRA, each on raw and preprocessed "
                                                    "images, in the benchmark window (the paper's comparison)")):
            if not name:
                row.addStretch(1)
                continue
            b = QPushButton(text, objectName=f"run_{name}")
            b.setToolTip(tip)
            row.addWidget(b)
            self.buttons[name] = b
        self.buttons["open_folder"].clicked.connect(self.open_folder)
        lay.addLayout(row)

    # -- content ------------------------------------------------------------------------------------
    def set_runs(self, summaries: Sequence, folder: str = "") -> None:
        """``summaries``: TrainRunSummary list (newest first); the selection is kept."""
        keep = self.selected_runs()
        self.summaries = {str(s.run_dir): s for s in summaries}
        t = self.table
        t.blockSignals(True)
        t.setRowCount(0)
        t.setRowCount(len(summaries))
        for r, s in enumerate(summaries):
            loss = "–" if s.last_loss is None else f"{s.last_loss:.4f}"
            step = f"{s.step:,}/{s.max_steps:,}" if s.max_steps else f"{s.step:,}"
            cells = (s.name, STATUS_TEXT.get(s.status, s.status), step, loss, _short(s.model), _short(s.dataset))
            tip = (f"{s.run_dir}\nmodel: {s.model}\ndataset: {s.dataset}"
                   + ("\nadapter: ready" if s.has_adapter else ""))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                item.setData(RUN_DIR, str(s.run_dir))
                if c in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                t.setItem(r, c, item)
            t.item(r, 1).setForeground(QBrush(QColor(STATUS_COLOURS.get(s.status, "#9aa3ad"))))
        t.blockSignals(False)
        self.count_label.setText(f"{len(summaries)} run{'s' if len(summaries) != 1 else ''}")
        self.empty.setVisible(not summaries)
        self.empty.setText(f"No runs in {folder} yet: fill in the form and press Start." if folder else "")
        self.select_runs(keep, emit=False)
        self._update_buttons()
        if keep != self.selected_runs():
            self.runsSelected.emit(self.selected_runs())

    def select_runs(self, run_dirs: Sequence[str], emit: bool = True) -> None:
        wanted = [str(d) for d in run_dirs]
        t = self.table
        t.blockSignals(True)
        t.clearSelection()
        mode = t.selectionMode()
        t.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for r in range(t.rowCount()):
            if t.item(r, 0).data(RUN_DIR) in wanted:
                t.selectRow(r)
        t.setSelectionMode(mode)
        t.blockSignals(False)
        if emit:
            self._selection_changed()

    def open_folder(self) -> None:
        dirs = self.selected_runs()
        if dirs:
            QDesktopServices.openUrl(QUrl.fromLocalFile(dirs[0]))

    def selected_runs(self) -> List[str]:
        rows = sorted(i.row() for i in self.table.selectionModel().selectedRows())
        return [self.table.item(r, 0).data(RUN_DIR) for r in rows]

    def summary_of(self, run_dir: str):
        return self.summaries.get(str(run_dir))

    def selected_finished(self) -> Optional[str]:
        """The one selected run, when it has its adapter."""
        dirs = self.selected_runs()
        s = self.summary_of(dirs[0]) if len(dirs) == 1 else None
        return dirs[0] if s is not None and s.has_adapter else None

    def _selection_changed(self) -> None:
        self._update_buttons()
        self.runsSelected.emit(self.selected_runs())

    def _update_buttons(self) -> None:
        one = len(self.selected_runs()) == 1
        finished = self.selected_finished() is not None
        for name, b in self.buttons.items():
            b.setEnabled(one if name in ("use_settings", "open_folder") else finished)
        why = "" if finished else "\n(select one finished run: it has an adapter)"
        for name in ("merge", "register", "export", "benchmark"):
            tip = self.buttons[name].toolTip().split("\n(")[0]
            self.buttons[name].setToolTip(tip + why)
