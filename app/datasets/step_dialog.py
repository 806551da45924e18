"""The shared frame of the dataset step dialogs (import, templates, QC, split, export).

A step dialog is a form, a progress bar, a summary (counts, then a scrollable list of problems
or written files) and Run / Cancel / Close. Subclasses say what to run (``job``) and how to show
its result (``show_result``); this class runs it on the "jobs" lane, shows progress, turns errors
into text a person can act on, asks before adding to or writing over existing data (the job
raises ``NeedsConfirmation``; Run then reads as the agreeing action) and emits ``changed`` when
the project may have changed, so the review queue and the statistics refresh.
"""

from __future__ import annotations

import html
import inspect
from typing import Iterable, Optional, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app import workers
from sarlang_core.errors import CancelledError, SarlangError
from sarlang_core.progress import CancelToken, Progress
from sarlang_core.services.dataset_steps import NeedsConfirmation

from .messages import ERROR_STYLE, NOTE_STYLE, WARN_STYLE, error_text

LIST_STYLE = "QListWidget { background: #14161a; border: 1px solid #2e333a; border-radius: 3px; }"
MAX_LISTED = 5000


class _Line(QLabel):
    """A note that takes no room while it is empty."""

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setVisible(bool(text))


class PathField(QWidget):
    """A path line edit with a Browse button (a file to open, a file to save, or a folder)."""

    def __init__(self, name: str, mode: str = "open", caption: str = "", filter: str = "", parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.mode, self.caption, self.filter = mode, caption, filter
        self.edit = QLineEdit(objectName=name)
        self.edit.setMinimumWidth(380)
        self.browse = QPushButton("Browse…", objectName=f"{name}_browse")
        self.browse.clicked.connect(self.choose)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.browse)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)

    def choose(self) -> None:
        start = self.text()
        if self.mode == "folder":
            path = QFileDialog.getExistingDirectory(self, self.caption, start)
        elif self.mode == "save":
            path, _ = QFileDialog.getSaveFileName(self, self.caption, start, self.filter)
        else:
            path, _ = QFileDialog.getOpenFileName(self, self.caption, start, self.filter)
        if path:
            self.edit.setText(path)


class DatasetStepDialog(QDialog):
    changed = Signal(object)        # the step's result (None after a cancel): the project may have changed

    run_text = "Run"
    lane = "jobs"

    def __init__(self, title: str, name: str, intro: str, parent=None, *, cancellable: bool = False):
        super().__init__(parent)
        self.setObjectName(name)
        self.setWindowTitle(title)
        self.cancellable = cancellable      # whether the service polls a CancelToken
        self.outcome = None
        self._run_id = 0
        self._running = False
        self._cancel: Optional[CancelToken] = None
        self._confirmed = False
        self.agreed_option = ""     # NeedsConfirmation.option the user is asked to agree to
        self._inputs: list = []
        lay = QVBoxLayout(self)
        self.intro = QLabel(intro, objectName="intro", wordWrap=True)
        self.intro.setStyleSheet(NOTE_STYLE)
        lay.addWidget(self.intro)
        self.settings_box = QGroupBox("Settings")
        self.settings_box.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.form = QFormLayout(self.settings_box)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        lay.addWidget(self.settings_box)
        self.note = _Line("", objectName="note", wordWrap=True)
        self.note.setStyleSheet(NOTE_STYLE)
        lay.addWidget(self.note)
        self.progress = QProgressBar(objectName="step_progress", textVisible=True, maximum=1)
        self.progress.setFormat("not run yet")
        self.stage = _Line("", objectName="stage")
        self.stage.setStyleSheet(NOTE_STYLE)
        self.summary = QLabel("", objectName="summary", wordWrap=True,
                              textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list_title = QLabel("", objectName="list_title")
        self.listing = QListWidget(objectName="listing")
        self.listing.setStyleSheet(LIST_STYLE)
        self.listing.setMinimumHeight(140)
        for w in (self.progress, self.stage, self.summary, self.list_title):
            lay.addWidget(w)
        lay.addWidget(self.listing, 100)
        lay.addStretch(1)           # takes the spare room while the list is hidden
        for w in (self.note, self.stage, self.list_title, self.listing):
            w.hide()
        self.buttons = QHBoxLayout()
        self.buttons.addStretch(1)
        self.run_button = QPushButton(self.run_text, objectName="run_button", default=True)
        self.cancel_button = QPushButton("Cancel", objectName="cancel_button", enabled=False)
        self.cancel_button.setVisible(cancellable)
        self.close_button = QPushButton("Close", objectName="close_button")
        for b in (self.run_button, self.cancel_button, self.close_button):
            self.buttons.addWidget(b)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        lay.addLayout(self.buttons)
        self.resize(780, 620)

    # -- building blocks for subclasses ---------------------------------------------------------
    def add_row(self, label: str, widget: QWidget, tip: str = "") -> QWidget:
        if tip:
            widget.setToolTip(tip)
        self.form.addRow(label, widget)
        self.watch(widget)
        return widget

    def add_button(self, text: str, name: str, slot) -> QPushButton:
        """An action beside the summary (left of Run), e.g. "Open for review"; disabled until a result."""
        b = QPushButton(text, objectName=name, enabled=False)
        b.clicked.connect(slot)
        self.buttons.insertWidget(0, b)
        return b

    @staticmethod
    def combo(name: str, options: Sequence[tuple]) -> QComboBox:
        c = QComboBox(objectName=name)
        for data, text in options:
            c.addItem(text, data)
        return c

    @staticmethod
    def spin(name: str, value: int, lo: int, hi: int) -> QSpinBox:
        return QSpinBox(objectName=name, minimum=lo, maximum=hi, value=value, maximumWidth=160)

    def watch(self, widget: QWidget) -> None:
        """Disable ``widget`` while a step runs; changing it withdraws a given confirmation."""
        self._inputs.append(widget)
        edit = widget.edit if isinstance(widget, PathField) else widget
        for cls, signal in ((QLineEdit, "textChanged"), (QComboBox, "currentIndexChanged"), (QSpinBox, "valueChanged"),
                            (QDoubleSpinBox, "valueChanged"), (QCheckBox, "toggled")):
            if isinstance(edit, cls):
                getattr(edit, signal).connect(self._withdraw)
                break

    # -- what subclasses fill in ----------------------------------------------------------------
    def job(self, confirmed: bool) -> tuple:
        """``(fn, args, kwargs)`` for the step; raise SarlangError for input that cannot run."""
        raise TypeError(f"{type(self).__name__} must say which job it runs")

    def show_result(self, result) -> None:
        """Show a finished step's result (counts with ``show_counts``, lines with ``set_list``)."""
        self.set_summary(str(result))

    # -- running --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        if self._running:
            return
        try:
            fn, args, kwargs = self.job(self._confirmed)
        except SarlangError as exc:
            self.show_error(str(exc))
            return
        self._run_id += 1
        self._cancel = CancelToken() if self.cancellable else None
        if self._cancel is not None:
            kwargs["cancel"] = self._cancel
        self._set_running(True)
        self.progress.setRange(0, 0)
        self.progress.setFormat("working…")
        self.stage.setText("")
        self.set_summary("", "")
        self.set_list("", [])
        reports = "progress" in inspect.signature(fn).parameters      # else the bar stays busy
        workers.submit(self.lane, ("step", id(self), self._run_id), fn, *args, on_result=self._done,
                       on_error=self._failed, on_progress=self._progress if reports else None, **kwargs)

    def cancel(self) -> None:
        if self._cancel is not None and self._running:
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.stage.setText("cancelling at the next safe point; what is already stored is kept…")

    def _mine(self, rid) -> bool:
        return rid == ("step", id(self), self._run_id)

    def _set_running(self, running: bool) -> None:
        self._running = running
        for w in self._inputs:
            w.setEnabled(not running)
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and self.cancellable)
        self.close_button.setText("Hide" if running else "Close")

    def _progress(self, rid, p: Progress) -> None:
        if not self._mine(rid):
            return
        if p.total > 1 and p.done < p.total:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
            self.progress.setFormat(f"{p.stage} %v / %m")
        else:      # the services report start and end only: a busy bar says it is working
            self.progress.setRange(0, 0)
        self.stage.setText(f"{p.stage}: {p.message}" if p.message else f"{p.stage}…")

    def _finish_bar(self, text: str, full: bool) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if full else 0)
        self.progress.setFormat(text)
        self.stage.setText("")

    def _done(self, rid, result) -> None:
        if not self._mine(rid):
            return
        self._set_running(False)
        self._withdraw()
        self._finish_bar("done", True)
        self.outcome = result
        self.show_result(result)
        self.changed.emit(result)

    def _failed(self, rid, exc: BaseException) -> None:
        if not self._mine(rid):
            return
        self._set_running(False)
        if isinstance(exc, NeedsConfirmation):
            self._finish_bar("waiting for your answer", False)
            self._confirmed = True
            self.agreed_option = exc.option
            self.run_button.setText(exc.button)
            self.set_summary(str(exc), WARN_STYLE)
            return
        self._withdraw()
        if isinstance(exc, CancelledError):
            self._finish_bar("cancelled", False)
            self.set_summary("Cancelled. What was stored before the cancel is kept.", WARN_STYLE)
            self.changed.emit(None)
        else:
            self._finish_bar("failed", False)
            self.show_error(error_text(exc))

    def _withdraw(self, *_) -> None:
        self._confirmed = False
        self.agreed_option = ""
        self.run_button.setText(self.run_text)

    # -- showing --------------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.set_summary(text, ERROR_STYLE)

    def set_summary(self, text: str, style: str = "", rich: bool = False) -> None:
        self.summary.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
        self.summary.setStyleSheet(style)
        self.summary.setText(text)

    def show_counts(self, headline: str, done: dict, style: str = "") -> None:
        """``headline`` and a two-column table of the step's counts."""
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td align='right'>&nbsp;&nbsp;{v:,}</td></tr>"
                       for k, v in done.items())
        self.set_summary(f"<p>{html.escape(headline)}</p><table>{rows}</table>", style, rich=True)

    def set_list(self, title: str, lines: Iterable[str]) -> None:
        """The scrollable list under the summary (problems, written files); hidden when empty."""
        lines = list(lines)
        self.listing.clear()
        shown = lines[:MAX_LISTED]
        self.listing.addItems(shown)
        if len(lines) > len(shown):
            self.listing.addItem(f"… and {len(lines) - len(shown):,} more")
        for i in range(len(shown)):
            self.listing.item(i).setToolTip(shown[i])
        self.list_title.setText(title)
        self.list_title.setVisible(bool(lines))
        self.listing.setVisible(bool(lines))
