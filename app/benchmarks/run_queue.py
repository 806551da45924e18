"""The run queue of the benchmark window: runs lined up from the form, run one after another.

An ML engineer lines up base vs fine-tuned, with and without preprocessing (the paper's Tables
10/11), presses Start queue and walks away. The entries go through the window's one
``BenchmarkProcess`` one at a time (the GPU is one resource): a failed entry is marked with its
error and the queue goes on; Stop pauses the queue, Resume continues the stopped run, then the
rest. Each run gets its own folder in the runs folder (``name``, else ``name-2``, ``name-3``...).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple
from urllib.parse import urlparse

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sarlang_core.errors import SarlangError
from sarlang_core.evaluate.run_config import RunConfig
from sarlang_core.services import benchmarks

from .run_form import slug

QUEUED, RUNNING, DONE, FAILED, STOPPED = "queued", "running", "done", "failed", "stopped"
STATE_TEXT = {QUEUED: "queued", RUNNING: "▶ running", DONE: "✓ done", FAILED: "⚠ failed", STOPPED: "■ stopped"}
STATE_COLOURS = {QUEUED: "#9aa3ad", RUNNING: "#8fb8e6", DONE: "#98c379", FAILED: "#e06c75", STOPPED: "#e5c07b"}
CURRENT_BG = "#1f3f63"             # the run in flight; a selected row is a quieter grey
COLUMNS = ("Name", "Model", "Pre", "Task", "Status")
TITLE_STYLE = "font-weight: bold; color: #8fb8e6; padding: 2px 6px;"


def section_title(text: str, name: str) -> QLabel:
    label = QLabel(text, objectName=name)
    label.setStyleSheet(TITLE_STYLE)
    return label


def unique_run_dir(folder: str, name: str) -> Tuple[Path, str]:
    """A folder for a new run named ``name`` that holds nothing yet, and the suffix it took ("" or "-2"...)."""
    base, k, suffix = slug(name), 2, ""
    while (Path(folder) / f"{base}{suffix}").exists():
        suffix, k = f"-{k}", k + 1
    return Path(folder) / f"{base}{suffix}", suffix


@dataclass
class QueueEntry:
    config: RunConfig
    state: str = QUEUED
    run_dir: Optional[str] = None
    detail: str = ""            # the run's progress, its result, or what went wrong

    def model_text(self) -> str:
        b = self.config.backend
        if b.kind == "openai":
            shown = benchmarks.redact_url(b.endpoint)
            return f"{b.model} @ {urlparse(shown).netloc or shown}"
        return (Path(b.model).name or b.model) + (f" + {Path(b.adapter).name}" if b.adapter else "")

    def tooltip(self) -> str:
        b, d = self.config.backend, self.config.dataset
        where = f" (endpoint {benchmarks.redact_url(b.endpoint)})" if b.endpoint else ""
        lines = [self.config.name, f"model: {b.model}" + where]
        if b.adapter:
            lines.append(f"adapter: {b.adapter}")
        lines += [f"dataset: {d.source}", "preprocessing: " + ("Pipeline" if self.config.pipeline else "none")]
        if self.run_dir:
            lines.append(f"folder: {self.run_dir}")
        return "\n".join(lines + ([self.detail] if self.detail else []))


class RunQueuePanel(QWidget):
    """The queue list (name, model, pre, task, status) with Start queue, reorder and remove.

    ``launch(program, args, run_dir, text)`` starts a process through the window; the window
    hands each end of a queue run back through ``run_finished``."""

    changed = Signal()                  # entries or the queue's state changed
    message = Signal(str, bool)         # text for the window's status line, is it an error
    queueFinished = Signal(list, str)   # the finished run folders of this queue, "Queue done: ..."
    runActivated = Signal(str)          # a finished entry was double-clicked: its run folder

    def __init__(self, form, process, launch: Callable, runs_folder: Callable[[], str], parent=None):
        super().__init__(parent)
        self.setObjectName("RunQueuePanel")
        self.form, self.process, self._launch, self._runs_folder = form, process, launch, runs_folder
        self.entries: List[QueueEntry] = []
        self.state = "idle"             # idle | running | paused
        self.current: Optional[QueueEntry] = None
        self._session: List[QueueEntry] = []
        self._bar: Optional[QProgressBar] = None
        self._busy = False              # a run (queued or not) is going
        self._build()
        self._render()

    def _build(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 0)
        head = QHBoxLayout()
        head.addWidget(section_title("Queue", "queue_title"))
        self.summary = QLabel("", objectName="queue_summary")
        self.summary.setStyleSheet("color: #9aa3ad;")
        head.addWidget(self.summary)
        head.addStretch(1)
        self.variants_button = self._button(
            head, "+ Raw && preprocessed", "add_variants", lambda: self.add_from_form(variants=True),
            "Queue the form's run twice, as the paper's Tables 10/11 compare them: images as stored "
            "(<name>-raw) and preprocessed (<name>-pre)")
        lay.addLayout(head)
        t = self.table = QTableWidget(0, len(COLUMNS), objectName="queue_table")
        t.setHorizontalHeaderLabels(COLUMNS)
        t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        t.setWordWrap(False)
        t.setTextElideMode(Qt.TextElideMode.ElideMiddle)        # keeps an endpoint's port in view
        t.setStyleSheet("QTableWidget { selection-background-color: #3a4048; selection-color: #ffffff; }")
        t.setShowGrid(False)
        t.verticalHeader().hide()
        t.verticalHeader().setDefaultSectionSize(24)
        h = t.horizontalHeader()
        h.setHighlightSections(False)
        for c, mode in enumerate((QHeaderView.ResizeMode.Interactive, QHeaderView.ResizeMode.Stretch,
                                  QHeaderView.ResizeMode.ResizeToContents, QHeaderView.ResizeMode.ResizeToContents,
                                  QHeaderView.ResizeMode.Fixed)):
            h.setSectionResizeMode(c, mode)
        t.setColumnWidth(0, 104)
        t.setColumnWidth(4, 116)
        t.itemSelectionChanged.connect(self._update)
        t.itemDoubleClicked.connect(self._activated)
        lay.addWidget(t, 1)
        self.detail = QLabel("", objectName="queue_detail", wordWrap=True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.detail)
        row = QHBoxLayout()
        self.start_button = self._button(row, "▶ Start queue", "start_queue", self.start,
                                         "Run the queued entries one after another, in this order")
        row.addStretch(1)
        self.up_button = self._button(row, "▲", "queue_up", lambda: self.move(-1), "Move the entry up")
        self.down_button = self._button(row, "▼", "queue_down", lambda: self.move(1), "Move the entry down")
        self.remove_button = self._button(row, "Remove", "queue_remove", self.remove, "Take the entry off the queue")
        self.clear_button = self._button(row, "Clear finished", "queue_clear", self.clear_finished,
                                         "Take the done and failed entries off the list (their runs stay)")
        for b in (self.up_button, self.down_button):
            b.setFixedWidth(34)
        lay.addLayout(row)

    @staticmethod
    def _button(row: QHBoxLayout, text: str, name: str, slot, tip: str) -> QPushButton:
        b = QPushButton(text, objectName=name)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        row.addWidget(b)
        return b

    # -- editing ------------------------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.state == "paused"

    def pending(self) -> List[QueueEntry]:
        return [e for e in self.entries if e.state in (QUEUED, STOPPED)]

    def add_from_form(self, variants: bool = False) -> bool:
        """Put the form's run (or its raw / preprocessed pair) at the end of the queue."""
        try:
            configs = self.form.preprocessing_variants() if variants else [self.form.config()]
        except SarlangError as exc:
            self.message.emit(f"Cannot add to the queue: {exc}", True)
            return False
        self.form.remember()
        self.add(configs)
        self.message.emit("", False)
        return True

    def close_note(self) -> str:
        more = len(self.pending()) if self.state == "running" else 0
        return f" The queue pauses ({more} more run{'s' if more != 1 else ''} waiting)." if more > 0 else ""

    def add(self, configs: List[RunConfig]) -> None:
        self.entries += [QueueEntry(c) for c in configs]
        self._render()
        self.table.selectRow(len(self.entries) - 1)

    def selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def move(self, delta: int) -> None:
        i = self.selected_row()
        j = i + delta
        if i < 0 or not 0 <= j < len(self.entries):
            return
        self.entries[i], self.entries[j] = self.entries[j], self.entries[i]
        self._render()
        self.table.selectRow(j)

    def remove(self) -> None:
        i = self.selected_row()
        if i >= 0 and self.entries[i] is not self.current:
            del self.entries[i]
            self._render()
            if self.entries:
                self.table.selectRow(min(i, len(self.entries) - 1))

    def clear_finished(self) -> None:
        self.entries = [e for e in self.entries if e.state not in (DONE, FAILED)]
        self._render()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update()

    def _activated(self, item: QTableWidgetItem) -> None:
        entry = self.entries[item.row()]
        if entry.run_dir and entry.state != QUEUED:
            self.runActivated.emit(entry.run_dir)

    # -- running ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the queue (or, when it is paused, resume it)."""
        if self.paused:
            return self.resume()
        if self.process.running or self.state == "running" or not self.pending():
            return
        self._session = []
        self.state = "running"
        self._next()

    def resume(self) -> None:
        """Continue a paused queue: the stopped run first (where it stopped), then the rest."""
        if not self.paused or self.process.running:
            return
        self.state = "running"
        self._next()

    def owns(self, run_dir: Optional[str]) -> bool:
        """Is ``run_dir`` the queue's run in flight?"""
        return self.current is not None and self.current.run_dir == run_dir

    def _next(self) -> None:
        todo = self.pending()
        if not todo:
            return self._done()
        entry = self.current = todo[0]
        if entry not in self._session:
            self._session.append(entry)
        if entry.run_dir and (Path(entry.run_dir) / "run.json").exists():
            launch = benchmarks.resume_command(entry.run_dir)
            text = f"Queue: resuming {Path(entry.run_dir).name}…"
        else:
            run_dir, suffix = unique_run_dir(self._runs_folder(), entry.config.name)
            if suffix:
                entry.config = entry.config.with_(name=entry.config.name + suffix)
            entry.run_dir = str(run_dir)
            launch = benchmarks.run_command(entry.config, run_dir)
            text = f"Queue: starting {entry.config.name}…"
        entry.state, entry.detail = RUNNING, ""
        self._render()
        self._launch(launch, entry.run_dir, text)

    def show_progress(self, fraction: float, text: str) -> None:
        if self.current is not None:
            self.current.detail = text
            if self._bar is not None:
                self._bar.setValue(int(1000 * fraction))
                self._bar.setFormat(text)

    def run_finished(self, kind: str, ev: dict, go_on: bool = True) -> None:
        """The window says the queue's run ended: mark it; go on with the next, or pause on a stop."""
        entry, self.current = self.current, None
        if entry is None:
            return
        if kind == "done":
            entry.state = DONE
            failed = ev.get("failed")
            entry.detail = f"{ev.get('done')}/{ev.get('total')} predicted" + (
                f", {failed} sample(s) failed: Resume the run to retry them" if failed else "")
        elif kind == "cancelled":
            entry.state, entry.detail = STOPPED, "stopped: Resume continues it"
        else:
            entry.state, entry.detail = FAILED, ev.get("message") or "the run failed"
        if kind == "cancelled" or not go_on:
            self.state = "paused"
            self._render()
            left = len(self.pending())
            self.message.emit(f"Queue paused at {entry.config.name}: Resume continues it, then the rest "
                              f"({left} run{'s' if left != 1 else ''} to go).", False)
            return
        self._next()

    def _done(self) -> None:
        self.state, self.current = "idle", None
        self._render()
        runs = self._session
        failed = [e for e in runs if e.state == FAILED]
        text = f"Queue done: {len(runs)} run{'s' if len(runs) != 1 else ''}, {len(failed)} failed"
        if failed:
            text += "\n" + "\n".join(f"⚠ {e.config.name}: {e.detail.splitlines()[0]}" for e in failed)
        self.queueFinished.emit([e.run_dir for e in runs if e.state == DONE], text)

    # -- the view -----------------------------------------------------------------------------------
    def _render(self) -> None:
        keep = self.selected_row()
        self._bar = None
        t = self.table
        t.setRowCount(0)
        t.setRowCount(len(self.entries))
        for r, e in enumerate(self.entries):
            cfg = e.config
            cells = [cfg.name, e.model_text(), "✓" if cfg.pipeline else "✗", cfg.task, STATE_TEXT[e.state]]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(e.tooltip())
                if c in (2, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                if e is self.current:
                    item.setBackground(QBrush(QColor(CURRENT_BG)))
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                t.setItem(r, c, item)
            t.item(r, 4).setForeground(QBrush(QColor(STATE_COLOURS[e.state])))
            if e is self.current and e.state == RUNNING:
                self._bar = QProgressBar(maximum=1000, textVisible=True, objectName="queue_progress")
                self._bar.setRange(0, 1000)
                self._bar.setFormat(e.detail or "starting…")
                t.setCellWidget(r, 4, self._bar)
        if 0 <= keep < len(self.entries):
            t.selectRow(keep)
        self._update()

    def _update(self) -> None:
        i, busy = self.selected_row(), self._busy
        entry = self.entries[i] if i >= 0 else None
        self.up_button.setEnabled(i > 0)
        self.down_button.setEnabled(0 <= i < len(self.entries) - 1)
        self.remove_button.setEnabled(entry is not None and entry is not self.current)
        self.clear_button.setEnabled(any(e.state in (DONE, FAILED) for e in self.entries))
        self.start_button.setText("⟳ Resume queue" if self.paused else "▶ Start queue")
        self.start_button.setEnabled(not busy and self.state != "running" and bool(self.pending()))
        n, done = len(self.entries), sum(e.state == DONE for e in self.entries)
        failed = sum(e.state == FAILED for e in self.entries)
        self.summary.setText(f"{n} entr{'ies' if n != 1 else 'y'}" + (f" · {done} done" if done else "")
                             + (f" · {failed} failed" if failed else "")
                             + (" · paused" if self.paused else " · running" if self.state == "running" else ""))
        if entry is not None and entry.state in (FAILED, STOPPED, DONE) and entry.detail:
            colour = STATE_COLOURS[entry.state]
            self.detail.setText(f"{entry.config.name}: {entry.detail}")
            self.detail.setStyleSheet(f"color: {colour}; padding: 0 2px;")
            self.detail.show()
        else:
            self.detail.hide()
        if not n:
            self.detail.setText("Fill in the form, then “+ Add to queue”; Start queue runs them one by one.")
            self.detail.setStyleSheet("color: #9aa3ad; padding: 0 2px;")
            self.detail.show()
        self.changed.emit()
