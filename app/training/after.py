"""What comes after a finished run, off the UI thread (the ``jobs`` lane): merge its adapter into a
model folder, register it, export it for LLaMA-Factory, and line it up against its base in the
benchmark window. The questions (a folder, a name, the test data) go through replaceable
callables so tests answer them without a dialog."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional, Tuple

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QInputDialog,
    QLineEdit,
    QWidget,
)

from app import workers
from app.datasets.messages import error_text
from app.form_widgets import path_row
from sarlang_core.services import training_after

from .form import DATASET_FILTER

BenchmarkAnswer = Optional[Tuple[str, str, str]]     # dataset, task, split


class BenchmarkAdapterDialog(QDialog):
    """The test data the adapter is benchmarked on: a dataset, the task and the split."""

    def __init__(self, parent=None, dataset: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Benchmark this adapter")
        self.setMinimumWidth(520)
        form = QFormLayout(self)
        self.dataset = QLineEdit(dataset, objectName="bench_dataset", placeholderText="store .db, JSON or CSV")
        self.task = QComboBox(objectName="bench_task")
        self.task.addItem("VQA (accuracy, judged)", "vqa")
        self.task.addItem("Captions (BLEU, ROUGE-L, CIDEr)", "caption")
        self.split = QComboBox(objectName="bench_split")
        for s in ("test", "train", "all"):
            self.split.addItem(s, s)
        form.addRow("Test data", path_row(self.dataset, self._pick))
        form.addRow("Task", self.task)
        form.addRow("Split", self.split)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Queue 4 runs")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _pick(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Test data", self.dataset.text(), DATASET_FILTER)
        if path:
            self.dataset.setText(path)

    def answer(self) -> BenchmarkAnswer:
        if not self.dataset.text().strip():
            return None
        return self.dataset.text().strip(), self.task.currentData(), self.split.currentData()


class AfterRunActions(QObject):
    message = Signal(str, bool)         # text for the window's status line, is it an error
    busy = Signal(bool)
    benchmarkReady = Signal(list)       # the RunConfigs to queue
    registered = Signal(str)            # a name added to the model registry (model pickers refresh)

    def __init__(self, parent: QWidget, runs_folder: Callable[[], str]):
        super().__init__(parent)
        self.parent_widget = parent
        self.runs_folder = runs_folder
        self.running = 0
        # the questions; tests replace them
        self.ask_folder: Callable[[str, str], str] = self._ask_folder
        self.ask_name: Callable[[str], str] = self._ask_name
        self.ask_benchmark: Callable[[], BenchmarkAnswer] = self._ask_benchmark

    # -- the questions --------------------------------------------------------------------------------
    def _ask_folder(self, title: str, start: str) -> str:
        return QFileDialog.getExistingDirectory(self.parent_widget, title, start)

    def _ask_name(self, default: str) -> str:
        name, ok = QInputDialog.getText(self.parent_widget, "Register the adapter",
                                        "Name in the model registry (the chat and benchmarks list it):",
                                        text=default)
        return name.strip() if ok else ""

    def _ask_benchmark(self) -> BenchmarkAnswer:
        dialog = BenchmarkAdapterDialog(self.parent_widget)
        return dialog.answer() if dialog.exec() == QDialog.DialogCode.Accepted else None

    # -- the actions ----------------------------------------------------------------------------------
    def merge(self, run_dir: str) -> None:
        out = self.ask_folder("Merged model folder (new or empty)",
                              str(Path(self.runs_folder()) / f"{Path(run_dir).name}-merged"))
        if out:
            self._submit(f"Merging {Path(run_dir).name} into {out}…", training_after.merge_run, run_dir, out,
                         done=lambda path: f"Merged model written to {path}", progress=True)

    def register(self, run_dir: str) -> None:
        name = self.ask_name(Path(run_dir).name)
        if not name:
            return

        def done(path) -> str:
            self.registered.emit(name)
            return f"Registered “{name}” in {path}: the chat and the benchmark window list it now"

        self._submit(f"Registering {name}…", training_after.register_run, run_dir, name, done=done)

    def export(self, run_dir: str) -> None:
        out = self.ask_folder("LLaMA-Factory export folder", str(Path(run_dir) / "llamafactory"))
        if out:
            self._submit(f"Exporting {Path(run_dir).name} for LLaMA-Factory…", training_after.export_run, run_dir,
                         out, done=lambda path: f"LLaMA-Factory config written: {path}")

    def benchmark(self, run_dir: str) -> None:
        answer = self.ask_benchmark()
        if not answer:
            return
        dataset, task, split = answer

        def queued(configs: List) -> str:
            self.benchmarkReady.emit(configs)
            return (f"{len(configs)} benchmark runs queued (base and base + LoRA, raw and preprocessed): "
                    "press Start queue in the benchmark window")

        self._submit(f"Preparing the benchmark of {Path(run_dir).name}…", training_after.benchmark_configs,
                     run_dir, dataset, task=task, split=split, done=queued)

    def _submit(self, text: str, fn, *args, done: Callable, progress: bool = False, **kwargs) -> None:
        self.running += 1
        self.busy.emit(True)
        self.message.emit(text, False)

        def finished(_rid, result) -> None:
            self._end()
            self.message.emit(done(result), False)

        def failed(_rid, exc) -> None:
            self._end()
            self.message.emit(f"{text.rstrip('…')} failed: {error_text(exc)}", True)

        on_progress = (lambda _rid, p: self.message.emit(f"{text} {p.message or p.stage}", False)) if progress \
            else None
        workers.submit("jobs", text, fn, *args, on_result=finished, on_error=failed, on_progress=on_progress,
                       **kwargs)

    def _end(self) -> None:
        self.running -= 1
        self.busy.emit(self.running > 0)
