"""The fine-tuning window's bottom strip: Start / Stop / Resume, the `sarlang-cli train` process,
its progress (step, ETA, throughput, GPU memory) and what to do when something goes wrong."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from app import workers
from app.benchmarks.progress_text import fmt_eta
from app.datasets.messages import error_text

from .process import TrainingProcess

ERROR, NOTE = "#e06c75", "#9aa3ad"


def step_text(ev: dict) -> str:
    """'Step 12/200 · loss 1.2345 · ETA 3m10s · 850 tokens/s · 1.90 samples/s · GPU 14.2 GB'."""
    bits = [f"Step {ev.get('step', 0):,}/{ev.get('max_steps', 0):,}"]
    if ev.get("loss") is not None:
        bits.append(f"loss {ev['loss']:.4f}")
    if ev.get("eta_s") is not None:
        bits.append(fmt_eta(ev["eta_s"]))
    if ev.get("tokens_per_s") is not None:
        bits.append(f"{ev['tokens_per_s']:,.0f} tokens/s")
    if ev.get("samples_per_s") is not None:
        bits.append(f"{ev['samples_per_s']:.2f} samples/s")
    if ev.get("gpu_mem_gb") is not None:
        bits.append(f"GPU {ev['gpu_mem_gb']:.1f} GB")
    return " · ".join(bits)


class RunStrip(QWidget):
    """``prepare(text, run_dir, fn, *args)`` runs ``fn`` on the io lane (it returns the Launch and the
    run's earlier events), then starts the process: ``launched(run_dir, history)``, ``event(dict)``
    for each event, ``finished(kind, ev)`` at the end. The window wires its buttons' ``clicked``."""

    launched = Signal(str, list)
    event = Signal(dict)
    finished = Signal(str, dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("run_controls")
        self.process = TrainingProcess(self)
        self.process.progress.connect(self._event)
        self.process.finished.connect(self._finished)
        self.preparing = False
        self.max_steps = 0
        self.last_error = ""
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        buttons = []
        for text, name, tip in (
                ("▶ Start", "start_run", "Start the run the form describes, in a separate process"),
                ("■ Stop", "stop_run", "Finish the optimizer step in flight, save a checkpoint and stop"),
                ("⟳ Resume", "resume_run", "Continue the selected stopped run from its last checkpoint")):
            buttons.append(QPushButton(text, objectName=name, toolTip=tip, minimumWidth=100))
            row.addWidget(buttons[-1])
        self.start_button, self.stop_button, self.resume_button = buttons
        self.stop_button.clicked.connect(self.stop)
        self.progress_bar = QProgressBar(objectName="train_progress", textVisible=True)
        self.progress_bar.setFormat("")
        row.addWidget(self.progress_bar, 1)
        self.status_label = QLabel("Idle", objectName="train_status", minimumWidth=460)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.status_label)
        lay.addLayout(row)
        self.message_label = QLabel("", objectName="train_message", wordWrap=True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message_label.hide()
        lay.addWidget(self.message_label)
        self.set_running(False, resumable=False)

    @property
    def busy(self) -> bool:
        return self.process.running or self.preparing

    def set_running(self, running: bool, resumable: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running and not self.preparing)
        self.resume_button.setEnabled(not running and resumable)

    # -- starting -------------------------------------------------------------------------------------
    def prepare(self, text: str, run_dir: str, fn, *args) -> None:
        self.preparing = True
        self.show_message("")
        self.set_running(True, False)
        self.status_label.setText(text)
        self.progress_bar.setRange(0, 0)
        workers.submit("io", run_dir, fn, *args, on_result=lambda _r, got: self._launch(run_dir, *got),
                       on_error=self._prepare_failed)

    def _prepare_failed(self, _run_dir, exc) -> None:
        self.preparing = False
        self.set_running(False, False)
        self.progress_bar.setRange(0, 1)
        self.status_label.setText("Idle")
        self.show_message(f"Cannot start: {error_text(exc)}", error=True)
        self.finished.emit("error", {"message": error_text(exc), "run_dir": _run_dir, "started": False})

    def _launch(self, run_dir: str, launch, history: list) -> None:
        self.preparing = False
        self.max_steps = 0
        self.stop_button.setEnabled(True)
        self.launched.emit(run_dir, history)
        self.process.start(launch.program, launch.args, run_dir, env=launch.env)

    def stop(self) -> None:
        if self.process.running:
            self.status_label.setText("Stopping after the optimizer step in flight (a checkpoint is saved)…")
            self.stop_button.setEnabled(False)
            self.process.stop()

    # -- progress ---------------------------------------------------------------------------------------
    def _event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "progress":
            if not self.max_steps and not self.process.stopping:
                self.status_label.setText(str(ev.get("message") or ev.get("stage") or ""))
                self.progress_bar.setFormat(str(ev.get("stage") or "").capitalize())
        elif kind in ("start", "step"):
            self.max_steps = int(ev.get("max_steps") or self.max_steps)
            step = int(ev.get("step") or 0)
            self.progress_bar.setRange(0, max(1, self.max_steps))
            self.progress_bar.setValue(step)
            self.progress_bar.setFormat(f"Step {step:,}/{self.max_steps:,}")
            if not self.process.stopping:
                self.status_label.setText(step_text(ev) if kind == "step" else
                                          f"Training: step {step:,} of {self.max_steps:,}")
        elif kind == "eval":
            self.status_label.setToolTip(f"evaluation loss {ev.get('eval_loss')} at step {ev.get('step')}")
        self.event.emit(ev)

    def _finished(self, kind: str, ev: dict) -> None:
        name = Path(ev.get("run_dir") or "").name
        self.set_running(False, kind == "stopped")
        if kind == "done":
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(1)
            self.progress_bar.setFormat("Finished")
            self.status_label.setText(f"✓ {name} finished after {ev.get('step', 0):,} steps")
            self.show_message(f"Run finished: the adapter is in {ev.get('adapter')}. Select the run to merge, "
                              "register, export or benchmark it.")
        elif kind == "stopped":
            self.progress_bar.setFormat("Stopped")
            self.status_label.setText(f"■ {name} stopped at step {ev.get('step', '?')}")
            self.show_message("Stopped with a checkpoint: select the run and press Resume to continue it.")
        else:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Failed")
            self.status_label.setText(f"⚠ {name} failed")
            message = ev.get("message") or "the run failed"
            extra = [ln for ln in (ev.get("stderr") or "").splitlines() if ln.strip() and message not in ln]
            self.show_message(f"Run failed: {message}" + ("\n" + "\n".join(extra[-6:]) if extra else "")
                              + "\nFix the cause, then Start again (or Resume from its last checkpoint).", error=True)
        self.finished.emit(kind, ev)

    def show_message(self, text: str, error: bool = False) -> None:
        if error:
            self.last_error = text
        self.message_label.setVisible(bool(text))
        colour = ERROR if error else NOTE
        self.message_label.setText(f'<span style="color:{colour}">{html.escape(text).replace(chr(10), "<br>")}</span>')

    def current_run(self) -> Optional[str]:
        return self.process.run_dir if self.process.running else None
