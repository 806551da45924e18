"""Benchmarks: start, stop and resume runs out of process, compare them, see where a model fails.

Left: the "New run" form over the run queue (entries added from the form, run one after another).
Right: the runs of the runs folder (sortable; select several to chart
and compare them) over tabs with the charts, the comparison and the per-sample browser. Bottom:
Start / Stop / Resume with the live progress of the `sarlang-cli bench` process and, when
something goes wrong, what happened and what to do.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Callable, List, Optional

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import settings as app_settings
from app import workers
from app.run_process import StopBeforeClose
from sarlang_core.errors import SarlangError
from sarlang_core.services import benchmarks

from .charts import BenchmarkChartsView
from .process import BenchmarkProcess
from .progress_text import STAGES, fmt_eta, headline_text
from .results_view import ComparisonView, RunsTableView, load_runs
from .run_form import RunFormPanel
from .run_queue import RunQueuePanel, section_title
from .sample_browser import SampleBrowserPanel

SETTING = "benchmarks/runs_folder"


class BenchmarkWindow(StopBeforeClose, QMainWindow):
    stop_title = "A benchmark run is going"
    stop_question = ("Stop the run and close? What is done is kept; Resume continues it later.")
    runsLoaded = Signal(list)           # run folders shown, after each refresh
    runFinished = Signal(str, dict)     # "done" | "cancelled" | "error", the event

    def __init__(self, parent=None, pipeline_source: Optional[Callable[[], object]] = None,
                 runs_folder: Optional[str] = None):
        super().__init__(parent)
        self.setObjectName("BenchmarkWindow")
        self.setWindowTitle("Benchmarks — SARLANG Studio")
        self.resize(1500, 900)
        self.process = BenchmarkProcess(self)
        self.process.progress.connect(self._progress)
        self.process.finished.connect(self._finished)
        self.init_stop_before_close()
        self._list_request = self._list_shown = 0
        self._seen_dir = self._running = False
        self.last_error = ""
        self._build(pipeline_source)
        folder = runs_folder or app_settings.settings().value(SETTING) or str(Path.home() / "sarlang-runs")
        self.set_runs_folder(str(folder))

    # -- layout ---------------------------------------------------------------------------------------
    def _build(self, pipeline_source) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 8, 8, 6)

        top = QHBoxLayout()
        top.addWidget(QLabel("Runs folder"))
        self.folder_edit = QLineEdit(objectName="runs_folder")
        self.folder_edit.editingFinished.connect(lambda: self.set_runs_folder(self.folder_edit.text()))
        top.addWidget(self.folder_edit, 1)
        for text, name, slot, tip in (
                ("Browse…", "browse_runs", self._browse, "Choose the folder that holds the run folders"),
                ("Refresh", "refresh_runs", self.refresh, "Read the runs folder again (F5)"),
                ("Compare selected", "compare", self.compare_selected,
                 "The selected runs side by side, the first one as baseline, with Δ rows"),
                ("Open report", "open_report", self._open_report, "report.md of the selected run")):
            b = QPushButton(text, objectName=name)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            top.addWidget(b)
            setattr(self, f"{name}_button", b)
        self.refresh_runs_button.setShortcut(QKeySequence("F5"))
        outer.addLayout(top)

        split = QSplitter(Qt.Orientation.Horizontal)
        left = QSplitter(Qt.Orientation.Vertical, objectName="left_split")
        form_box = QWidget()
        ll = QVBoxLayout(form_box)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(section_title("New run", "form_title"))
        self.form = RunFormPanel(pipeline_source)
        ll.addWidget(self.form, 1)
        left.addWidget(form_box)
        self.queue = RunQueuePanel(self.form, self.process, self._launch, lambda: self.runs_folder)
        self.queue.message.connect(self._show_message)
        self.queue.changed.connect(self._update_resume)
        self.queue.queueFinished.connect(self._queue_done)
        self.queue.runActivated.connect(lambda d: self.runs.select_runs([d]))
        left.addWidget(self.queue)
        # The form is the taller need (its types list was cut by the queue at 900 px): the queue starts
        # at its natural height, and a taller window gives the form the extra.
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 0)
        left.setSizes([620, max(170, self.queue.minimumSizeHint().height())])
        split.addWidget(left)

        right = QSplitter(Qt.Orientation.Vertical)
        self.runs = RunsTableView()
        self.runs.runsSelected.connect(self._selection_changed)
        right.addWidget(self.runs)
        self.tabs = QTabWidget(objectName="result_tabs")
        self.charts = BenchmarkChartsView()
        self.comparison = ComparisonView()
        self.samples = SampleBrowserPanel()
        self.tabs.addTab(self.charts, "Charts")
        self.tabs.addTab(self.comparison, "Compare")
        self.tabs.addTab(self.samples, "Samples")
        right.addWidget(self.tabs)
        right.setStretchFactor(0, 2)
        right.setStretchFactor(1, 3)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([510, 990])
        outer.addWidget(split, 1)
        outer.addWidget(self._control_strip())
        self.setCentralWidget(central)
        self._set_running(False)
        self._selection_changed([])

    def _control_strip(self) -> QWidget:
        strip = QWidget(objectName="run_controls")
        lay = QVBoxLayout(strip)
        lay.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        buttons = []
        for text, name, slot, tip in (
                ("▶ Start run", "start_run", self.start,
                 "Start the run described in the form, in a separate sarlang-cli process"),
                ("+ Add to queue", "add_to_queue", lambda: self.queue.add_from_form(),
                 "Put the run described in the form at the end of the queue (below the form)"),
                ("■ Stop", "stop_run", self.stop, "Stop cleanly after the sample in flight; what is done is kept"),
                ("⟳ Resume", "resume_run", lambda: self.resume(),
                 "Continue the selected run (retries failed samples, then scores it), or the paused queue")):
            buttons.append(QPushButton(text, objectName=name, toolTip=tip, minimumWidth=110))
            buttons[-1].clicked.connect(slot)
            row.addWidget(buttons[-1])
        self.start_button, self.add_queue_button, self.stop_button, self.resume_button = buttons
        self.progress_bar = QProgressBar(objectName="run_progress", maximum=1000, textVisible=True)
        self.progress_bar.setFormat("")
        row.addWidget(self.progress_bar, 1)
        self.stage_label = QLabel("Idle", objectName="stage_label", minimumWidth=340)
        row.addWidget(self.stage_label)
        lay.addLayout(row)
        self.message_label = QLabel("", objectName="run_message", wordWrap=True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()
        lay.addWidget(self.message_label)
        return strip

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
        self.refresh()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Runs folder", self.runs_folder)
        if folder:
            self.set_runs_folder(folder)

    def refresh(self, select: Optional[List[str]] = None) -> None:
        self._list_request += 1
        self._select_after = select
        workers.submit("io", self._list_request, load_runs, self.runs_folder, on_result=self._runs_loaded,
                       on_error=self._runs_failed)

    def _runs_loaded(self, rid: int, rows: list) -> None:
        if rid != self._list_request:
            return
        self._list_shown = rid
        self.runs.set_runs(rows)
        if self._select_after:
            self.runs.select_runs(self._select_after)
        if not rows:
            self.samples.show_message(f"No runs in {self.runs_folder} yet: fill in the form and press Start run.")
        self.runsLoaded.emit([str(r["summary"].run_dir) for r in rows])

    @property
    def refreshing(self) -> bool:
        """A read of the runs folder is on its way."""
        return self._list_shown != self._list_request

    def _runs_failed(self, rid: int, exc) -> None:
        if rid == self._list_request:
            self._list_shown = rid
            self._show_message(f"Cannot read the runs folder: {exc}", error=True)

    def _selection_changed(self, run_dirs: list) -> None:
        self.compare_button.setEnabled(len(run_dirs) >= 2)
        self.open_report_button.setEnabled(len(run_dirs) == 1)
        self._update_resume()
        unscored = [s.name for s in map(self.runs.summary_of, run_dirs) if s is not None and not s.headline]
        self.charts.set_runs(self.runs.metrics_of(run_dirs), unscored)
        if run_dirs:
            self.samples.load(run_dirs[0])
        elif self.runs.rows:
            self.samples.show_message("Select a run to browse its samples.")

    # -- compare --------------------------------------------------------------------------------------
    def compare_selected(self) -> None:
        dirs = self.runs.selected_runs()
        if len(dirs) < 2:
            return
        names = [getattr(self.runs.summary_of(d), "name", d) for d in dirs]
        self.tabs.setCurrentWidget(self.comparison)
        self.comparison.show_message("Comparing…")
        workers.submit("io", names, benchmarks.compare_runs, dirs, on_result=self._compared,
                       on_error=self._compare_failed)

    def _compared(self, names, table) -> None:
        self.comparison.show_table(table, names)

    def _compare_failed(self, _names, exc) -> None:
        self.comparison.show_message(f"⚠ {exc}")

    def _open_report(self) -> None:
        dirs = self.runs.selected_runs()
        if dirs:
            report = Path(dirs[0]) / "report.md"
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(report if report.is_file() else dirs[0])))

    # -- start / stop / resume ------------------------------------------------------------------------
    def start(self) -> Optional[str]:
        """Start the run the form describes; returns its folder (None when the form says no)."""
        if self.process.running:
            return None
        try:
            config = self.form.config()
        except SarlangError as exc:
            self._show_message(f"Cannot start: {exc}", error=True)
            return None
        run_dir = Path(self.runs_folder) / self.form.folder_name()
        if (run_dir / "run.json").exists():
            self._show_message(f"Cannot start: {run_dir} already holds a run. Give the run another name, "
                               "or select that run and press Resume.", error=True)
            return None
        self.form.remember()
        self._launch(benchmarks.run_command(config, run_dir), str(run_dir), f"Starting {config.name}…")
        return str(run_dir)

    def resume(self, run_dir: Optional[str] = None) -> Optional[str]:
        """Resume the selected run, or, while the queue is paused, the queue."""
        if self.process.running:
            return None
        if run_dir is None and self.queue.paused:
            self.queue.resume()
            return self.process.run_dir if self.process.running else None
        dirs = [run_dir] if run_dir else self.runs.selected_runs()
        if len(dirs) != 1:
            self._show_message("Select one run to resume.", error=True)
            return None
        self._launch(benchmarks.resume_command(dirs[0]), str(dirs[0]), f"Resuming {Path(dirs[0]).name}…")
        return str(dirs[0])

    def _launch(self, launch, run_dir: str, text: str) -> None:
        """Start ``launch`` (services.benchmarks.Launch) for ``run_dir``."""
        self._show_message("")
        self._seen_dir = False
        self._set_running(True)
        self.progress_bar.setRange(0, 0)       # busy until the first progress line
        self.stage_label.setText(text)
        self.process.start(launch.program, launch.args, run_dir, env=launch.env)

    def stop(self) -> None:
        if self.process.running:
            self.stage_label.setText("Stopping after the sample in flight…")
            self.stop_button.setEnabled(False)
            self.process.stop()

    def _set_running(self, running: bool) -> None:
        """The form stays usable during a run: the next entries can be queued meanwhile."""
        self._running = running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self._update_resume()
        self.queue.set_busy(running)

    def _update_resume(self) -> None:
        paused = self.queue.paused
        self.resume_button.setText("⟳ Resume queue" if paused else "⟳ Resume")
        self.resume_button.setEnabled(not self._running and (paused or len(self.runs.selected_runs()) == 1))

    def _progress(self, ev: dict) -> None:
        done, total = int(ev.get("done") or 0), int(ev.get("total") or 0)
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(int(1000 * done / total) if total else 0)
        stage = STAGES.get(ev.get("stage"), str(ev.get("stage") or "").capitalize())
        bits = [f"{stage} {done}/{total}" if total else stage]
        self.progress_bar.setFormat(bits[0])
        self.queue.show_progress(done / total if total else 0.0, bits[0])
        if ev.get("per_sample_s"):
            bits.append(f"{ev['per_sample_s']:.2f} s/sample")
        if ev.get("eta_s") is not None and ev.get("stage") == "generate":
            bits.append(fmt_eta(ev["eta_s"]))
        self.stage_label.setText(" · ".join(bits))
        self.stage_label.setToolTip(str(ev.get("message") or ""))
        if not self._seen_dir:          # the run folder exists now: show it in the list
            self._seen_dir = True
            self.refresh(select=[self.process.run_dir])

    def _finished(self, kind: str, ev: dict) -> None:
        run_dir = ev.get("run_dir")
        self._set_running(False)
        self.progress_bar.setRange(0, 1000)
        if kind == "done":
            self.progress_bar.setValue(1000)
            self.progress_bar.setFormat("Complete" if ev.get("state") == "complete" else str(ev.get("state")))
            head = headline_text(ev.get("headline") or {})
            failed = f" · {ev['failed']} sample(s) failed: Resume retries them" if ev.get("failed") else ""
            self.stage_label.setText(f"✓ {Path(run_dir).name}: {ev.get('done')}/{ev.get('total')} predicted")
            self._show_message(f"Run finished: {head}{failed}", error=bool(ev.get("failed")))
        elif kind == "cancelled":
            self.progress_bar.setFormat("Stopped")
            self.stage_label.setText(f"■ {Path(run_dir).name} stopped")
            self._show_message("Stopped. What was done is kept: select the run and press Resume to continue it.")
        else:
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Failed")
            self.stage_label.setText(f"⚠ {Path(run_dir).name} failed")
            message = ev.get("message") or "the run failed"
            tail = ev.get("stderr") or ""
            extra = [ln for ln in tail.splitlines() if message not in ln and ln.strip()]
            hint = ("\nFix the form (model, endpoint, dataset) and start again, or select the run and Resume "
                    "once the cause is gone.")
            self._show_message(f"Run failed: {message}" + ("\n" + "\n".join(extra[-6:]) if extra else "") + hint,
                               error=True)
        self.refresh(select=[run_dir] if run_dir else None)
        self.runFinished.emit(kind, ev)
        if self.queue.owns(run_dir):
            self.queue.run_finished(kind, ev, go_on=not self.close_when_stopped)
        self.close_if_asked()

    def queue_runs(self, configs: List) -> None:
        """Add ``configs`` (RunConfigs made elsewhere, e.g. a fine-tuned adapter against its base) to
        the queue; Start queue runs them."""
        self.queue.add(list(configs))
        self._show_message(f"{len(configs)} run{'s' if len(configs) != 1 else ''} added to the queue: press "
                           "Start queue to run them one after another.")

    def _queue_done(self, run_dirs: list, text: str) -> None:
        self.stage_label.setText(text.splitlines()[0])
        self._show_message(text, error="\n" in text)
        self.refresh(select=run_dirs)

    def _show_message(self, text: str, error: bool = False) -> None:
        if error:
            self.last_error = text
        self.message_label.setVisible(bool(text))
        colour = "#e06c75" if error else "#9aa3ad"
        self.message_label.setText(f'<span style="color:{colour}">{html.escape(text).replace(chr(10), "<br>")}</span>')

    def close_note(self) -> str:
        return self.queue.close_note()
