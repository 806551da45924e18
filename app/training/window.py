"""Fine-tuning: configure a LoRA run, preview its data, start / stop / resume it out of process,
follow its curves live, and take a finished adapter further (merge, register, export, benchmark).

Left: the form (every TrainConfig field) with Preview data and Show command. Right: the live
curves and the data preview in tabs, over the runs of the runs folder. Bottom: Start / Stop /
Resume with the step, ETA, throughput and GPU memory of the `sarlang-cli train` process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional

from PySide6.QtCore import QFileSystemWatcher, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app import workers
from app.benchmarks.run_queue import section_title
from app.datasets.messages import error_text
from app.run_process import StopBeforeClose
from sarlang_core.errors import SarlangError
from sarlang_core.services import training

from .after import AfterRunActions
from .command_dialog import CommandDialog
from .curves import TrainingCurvesView
from .form import TrainFormPanel
from .jobs import prepare_resume, prepare_start, preview, read_overlays
from .preview import DataPreviewView
from .run_strip import RunStrip
from .runs_list import TrainRunsPanel

SETTING = "training/runs_folder"
POLL_MS = 10_000          # the runs list is read again this often (runs the CLI drives change too)


class TrainingWindow(StopBeforeClose, QMainWindow):
    stop_title = "A training run is going"
    stop_question = ("Stop the run and close? It saves a checkpoint after the step in flight; "
                     "Resume continues it later.")
    runFinished = Signal(str, dict)     # "done" | "stopped" | "error", the event (+ run_dir)
    runsLoaded = Signal(list)           # run folders listed, after each refresh
    previewShown = Signal(object)       # the DataPreview, or the error

    def __init__(self, parent=None, runs_folder: Optional[str] = None,
                 queue_benchmarks: Optional[Callable[[list], None]] = None):
        super().__init__(parent)
        self.setObjectName("TrainingWindow")
        self.setWindowTitle("Fine-tuning — SARLANG Studio")
        self.resize(1500, 900)
        self.queue_benchmarks = queue_benchmarks
        self.init_stop_before_close()
        self._seen_dir = False
        self._list_request = self._overlay_request = self._preview_request = 0
        self.live_dir: Optional[str] = None
        self.refreshing = False
        self._build()
        self.process = self.strip.process
        self.after = AfterRunActions(self, lambda: self.runs_folder)
        self.after.message.connect(self._show_message)
        self.after.benchmarkReady.connect(self._queue_benchmarks)
        self._wire_runs()
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(lambda _p: self.refresh())
        self.poll = QTimer(self, interval=POLL_MS)
        self.poll.timeout.connect(lambda: self.isVisible() and not self.refreshing and self.refresh())
        self.poll.start()
        folder = runs_folder or app_settings.settings().value(SETTING) or str(Path.home() / "sarlang-training")
        self.set_runs_folder(str(folder))

    # -- layout ---------------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 6)
        top = QHBoxLayout()
        top.addWidget(QLabel("Runs folder"))
        self.folder_edit = QLineEdit(objectName="runs_folder")
        self.folder_edit.setToolTip("Each run is a folder in here (config, events, checkpoints, adapter)")
        self.folder_edit.editingFinished.connect(lambda: self.set_runs_folder(self.folder_edit.text()))
        top.addWidget(self.folder_edit, 1)
        self.browse_button = QPushButton("Browse…", objectName="browse_runs")
        self.browse_button.clicked.connect(self._browse)
        self.refresh_button = QPushButton("Refresh", objectName="refresh_runs", toolTip="Read the runs folder (F5)")
        self.refresh_button.setShortcut(QKeySequence("F5"))
        self.refresh_button.clicked.connect(lambda: self.refresh())
        top.addWidget(self.browse_button)
        top.addWidget(self.refresh_button)
        outer.addLayout(top)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(section_title("New run", "form_title"))
        self.form = TrainFormPanel()
        ll.addWidget(self.form, 1)
        row = QHBoxLayout()
        self.preview_button = QPushButton("Preview data", objectName="preview_data")
        self.preview_button.setToolTip("The first samples as the model will see them, and the token lengths of all")
        self.preview_button.clicked.connect(self.preview)
        self.command_button = QPushButton("Show command…", objectName="show_command")
        self.command_button.setToolTip("The sarlang-cli line that starts this run from a shell")
        self.command_button.clicked.connect(self.show_command)
        row.addWidget(self.preview_button, 1)
        row.addWidget(self.command_button, 1)
        ll.addLayout(row)
        split.addWidget(left)

        right = QSplitter(Qt.Orientation.Vertical)
        self.tabs = QTabWidget(objectName="train_tabs")
        self.curves = TrainingCurvesView()
        self.data_preview = DataPreviewView()
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.data_preview, "Data preview")
        right.addWidget(self.tabs)
        self.runs = TrainRunsPanel()
        right.addWidget(self.runs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setSizes([520, 300])
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.splitterMoved.connect(self._split_moved)
        self.split, self._split_by_user = split, False
        outer.addWidget(split, 1)
        self.strip = RunStrip()
        self.strip.start_button.clicked.connect(self.start)
        self.strip.resume_button.clicked.connect(lambda: self.resume())
        self.strip.launched.connect(self._launched)
        self.strip.event.connect(self._event)
        self.strip.finished.connect(self._finished)
        outer.addWidget(self.strip)
        self.setCentralWidget(central)

    def _wire_runs(self) -> None:
        self.runs.runsSelected.connect(self._selection_changed)
        b = self.runs.buttons
        b["use_settings"].clicked.connect(self._use_settings)
        for name in ("merge", "register", "export", "benchmark"):
            b[name].clicked.connect(lambda _=False, n=name: self._after(n))
        if self.queue_benchmarks is None:
            b["benchmark"].setToolTip("Open Fine-tuning from the main window to queue benchmarks")

    # -- runs folder ----------------------------------------------------------------------------------
    def set_runs_folder(self, folder: str) -> None:
        folder = folder.strip()
        if not folder:
            return
        self.runs_folder = str(Path(folder).expanduser())
        self.folder_edit.setText(self.runs_folder)
        s = app_settings.settings()
        s.setValue(SETTING, self.runs_folder)
        s.sync()
        if self.watcher.directories():
            self.watcher.removePaths(self.watcher.directories())
        self.refresh()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_folder)
        if folder:
            self.set_runs_folder(folder)

    def refresh(self, select: Optional[List[str]] = None) -> None:
        self._list_request += 1
        self._select_after = select
        self.refreshing = True
        workers.submit("io", self._list_request, training.list_runs, self.runs_folder, on_result=self._runs_loaded,
                       on_error=self._runs_failed)

    def _runs_loaded(self, rid: int, summaries: list) -> None:
        if rid != self._list_request:
            return
        self.refreshing = False
        if not self.watcher.directories() and Path(self.runs_folder).is_dir():
            self.watcher.addPath(self.runs_folder)
        self.runs.set_runs(summaries, self.runs_folder)
        if self._select_after:
            self.runs.select_runs(self._select_after)
        self._update_resume()
        self.runsLoaded.emit([str(s.run_dir) for s in summaries])

    def _runs_failed(self, rid: int, exc) -> None:
        if rid == self._list_request:
            self.refreshing = False
            self._show_message(f"Cannot read the runs folder: {error_text(exc)}", error=True)

    def _selection_changed(self, run_dirs: list) -> None:
        self._update_resume()
        shown = [d for d in run_dirs if d != self.live_dir]
        self._overlay_request += 1
        workers.submit("io", self._overlay_request, read_overlays, shown,
                       on_result=lambda rid, runs: rid == self._overlay_request and self.curves.set_overlays(runs))

    def _use_settings(self) -> None:
        dirs = self.runs.selected_runs()
        if dirs:
            workers.submit("io", "run-config", training.run_config_of, dirs[0],
                           on_result=lambda _r, cfg: self.form.set_config(cfg),
                           on_error=lambda _r, exc: self._show_message(error_text(exc), error=True))

    def _after(self, action: str) -> None:
        run_dir = self.runs.selected_finished()
        if run_dir is None:
            return
        if action == "benchmark" and self.queue_benchmarks is None:
            self._show_message("Open Fine-tuning from the main window (Tools ▸ Fine-tuning) to queue benchmarks.",
                               error=True)
            return
        getattr(self.after, action)(run_dir)

    def _queue_benchmarks(self, configs: list) -> None:
        if self.queue_benchmarks is not None:
            self.queue_benchmarks(configs)

    # -- preview and command --------------------------------------------------------------------------
    def _form_run(self, what: str):
        """(config, pipeline choice) from the form, or None after saying what to fix."""
        try:
            return self.form.config(), self.form.pipeline_choice()
        except SarlangError as exc:
            self._show_message(f"Cannot {what}: {exc}", error=True)
            self.form.focus_problem(str(exc))
            return None

    def preview(self) -> None:
        got = self._form_run("preview the data")
        if got is None:
            return
        self._preview_request += 1
        self.tabs.setCurrentWidget(self.data_preview)
        self.data_preview.show_busy("Reading the dataset and the tokenizer…")
        self.preview_button.setEnabled(False)
        workers.submit("jobs", self._preview_request, preview, *got, 8, on_result=self._previewed,
                       on_error=self._preview_failed,
                       on_progress=lambda _r, p: self.data_preview.show_busy(f"{p.message}…"))

    def _previewed(self, rid: int, result) -> None:
        if rid == self._preview_request:
            self.preview_button.setEnabled(True)
            self.data_preview.show_preview(result)
            self.previewShown.emit(result)

    def _preview_failed(self, rid: int, exc) -> None:
        if rid == self._preview_request:
            self.preview_button.setEnabled(True)
            self.data_preview.show_error(error_text(exc))
            self.previewShown.emit(exc)

    def command_text(self) -> Optional[str]:
        got = self._form_run("write the command")
        if got is None:
            return None
        return training.command_text(got[0], str(Path(self.runs_folder) / self.form.folder_name()), got[1])

    def show_command(self) -> Optional[CommandDialog]:
        text = self.command_text()
        if text is None:
            return None
        dialog = CommandDialog(text, self)
        dialog.show()
        return dialog

    # -- start / stop / resume ------------------------------------------------------------------------
    def start(self) -> Optional[str]:
        """Start the run the form describes; returns its folder (None when the form says no)."""
        if self.strip.busy:
            return None
        got = self._form_run("start")
        if got is None:
            return None
        config, choice = got
        run_dir = Path(self.runs_folder) / self.form.folder_name()
        if (run_dir / "config.json").exists():
            self._show_message(f"Cannot start: {run_dir} already holds a run. Give the run another name, or "
                               "select that run and press Resume.", error=True)
            return None
        self.form.remember(config)
        self.strip.prepare(f"Starting {run_dir.name}…", str(run_dir), prepare_start, config, choice, str(run_dir))
        return str(run_dir)

    def resume(self, run_dir: Optional[str] = None) -> Optional[str]:
        if self.strip.busy:
            return None
        dirs = [run_dir] if run_dir else self.runs.selected_runs()
        if len(dirs) != 1:
            self._show_message("Select one stopped run to resume.", error=True)
            return None
        summary = self.runs.summary_of(dirs[0])
        if summary is not None and summary.status == "finished":
            self._show_message(f"{summary.name} has finished: its adapter is ready; nothing to resume.", error=True)
            return None
        self.strip.prepare(f"Resuming {Path(dirs[0]).name}…", str(dirs[0]), prepare_resume, str(dirs[0]))
        return str(dirs[0])

    def stop(self) -> None:
        self.strip.stop()

    def _update_resume(self) -> None:
        dirs = self.runs.selected_runs()
        summary = self.runs.summary_of(dirs[0]) if len(dirs) == 1 else None
        if not self.strip.busy:
            self.strip.resume_button.setEnabled(summary is not None and summary.status not in ("finished", "running"))

    def _show_message(self, text: str, error: bool = False) -> None:
        self.strip.show_message(text, error)

    @property
    def last_error(self) -> str:
        return self.strip.last_error

    # -- the run in flight ------------------------------------------------------------------------------
    def _launched(self, run_dir: str, history: list) -> None:
        self._seen_dir = False
        self.live_dir = run_dir
        self.curves.start_live(Path(run_dir).name, history)
        self.tabs.setCurrentWidget(self.curves)

    def _event(self, ev: dict) -> None:
        if not self._seen_dir:          # the run folder exists now: show it in the list
            self._seen_dir = True
            self.refresh(select=[self.process.run_dir])
        if ev.get("event") in ("step", "eval"):
            self.curves.add_event(ev)
        elif ev.get("event") == "checkpoint":
            self.refresh()

    def _finished(self, kind: str, ev: dict) -> None:
        run_dir = ev.get("run_dir") or ""
        self.refresh(select=[run_dir] if run_dir and ev.get("started", True) else None)
        self.runFinished.emit(kind, ev)
        self.close_if_asked()


    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.poll.start()

    def resizeEvent(self, event) -> None:
        """Until the user moves the splitter: the form in two columns where the window is wide (it
        then needs no scrolling on a 1080p screen), in one otherwise."""
        super().resizeEvent(event)
        if not self._split_by_user:
            wide = self.width() >= 1700
            left = self.form.two_columns_width() if wide else self.form.minimumWidth()
            self.split.setSizes([left, max(400, self.split.width() - left)])

    def _split_moved(self, *_):
        self._split_by_user = True

    def closing(self) -> None:
        self.poll.stop()
