"""The main window's file dialogs and the windows it opens: pipeline JSON, exports, dataset
projects, benchmarks and fine-tuning. A mixin of ``MainWindow`` (it uses the window's session, panels and
jobs), kept apart so the window itself only builds and wires."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtWidgets import QFileDialog

from sarlang_core.errors import PipelineError, SarlangError
from sarlang_core.preprocess.pipeline import Pipeline


class FileDialogsMixin:
    # -- pipeline JSON ------------------------------------------------------------------------
    def save_pipeline_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save pipeline", "pipeline.json", "Pipeline (*.json)")
        if path:
            self.save_pipeline(path)

    def save_pipeline(self, path: str) -> bool:
        """Write the current pipeline atomically; a failure (disk full, no permission) is shown."""
        try:
            self.pipeline_panel.pipeline().save(path)
        except SarlangError as exc:
            self.show_error("Cannot save pipeline", str(exc))
            return False
        return True

    def load_pipeline_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load pipeline", "", "Pipeline (*.json)")
        if path:
            self.load_pipeline(path)

    def load_pipeline(self, path: str) -> bool:
        try:
            pipe = Pipeline.load(path)
            band = self.session.scene.band_index(pipe.band) if self.session else 0
        except (PipelineError, SarlangError) as exc:
            self.show_error("Cannot load pipeline", str(exc))
            return False
        pipe = pipe.with_(band=band)
        self.pipeline_panel.set_pipeline(pipe, band)
        self.renderer.set_pipeline(pipe)
        return True

    # -- export -------------------------------------------------------------------------------
    def export_dialog(self) -> None:
        if self.session is None:
            return
        src = Path(self.session.scene.path)
        path, _ = QFileDialog.getSaveFileName(self, "Export processed GeoTIFF",
                                              str(src.with_name(src.stem + "_processed.tif")), "GeoTIFF (*.tif)")
        if path:
            self.jobs.export(self.session, self.pipeline_panel.pipeline(), path)

    def export_png_dialog(self) -> None:
        if self.session is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export view as PNG", "view.png", "PNG (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str) -> Optional[str]:
        """The processed pixels of the current view, as the pipeline renders them (uint8)."""
        proc = self.renderer.last_proc
        if proc is None:
            return None
        return self.jobs.save_png(proc, path)

    def review_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset project", "", "Dataset project (*.db);;All files (*)")
        if path:
            self.open_review(path)

    def new_dataset_dialog(self):
        """Import annotations or image pairs into a new dataset project; "Open for review" opens it."""
        from app.datasets.new_project_dialog import NewProjectDialog

        if self.new_project_dialog is None or not self.new_project_dialog.running:
            self.new_project_dialog = NewProjectDialog(self)
            self.new_project_dialog.openRequested.connect(self.open_review)
        self.new_project_dialog.show()
        return self.new_project_dialog

    def open_review(self, path: str):
        """The keyboard-first review window of a dataset project (a store made by `sarlang-cli dataset`)."""
        from app.datasets.review_window import ReviewWindow

        try:
            win = ReviewWindow(path, self)
        except SarlangError as exc:
            self.show_error("Cannot open dataset project", str(exc))
            return None
        win.show()
        return win

    def open_benchmarks(self):
        """The benchmark window: runs out of process, results, comparisons, per-sample browser."""
        from app.benchmarks.window import BenchmarkWindow

        if self.benchmark_window is None:
            self.benchmark_window = BenchmarkWindow(self, pipeline_source=self.pipeline_panel.pipeline)
        self.benchmark_window.show()
        self.benchmark_window.raise_()
        return self.benchmark_window

    def queue_benchmarks(self, configs) -> None:
        """Open the benchmark window with ``configs`` (RunConfigs) added to its queue."""
        self.open_benchmarks().queue_runs(configs)

    def open_training(self):
        """The fine-tuning window: LoRA runs out of process, live curves, merge / register / benchmark."""
        from app.training.window import TrainingWindow

        if self.training_window is None:
            self.training_window = TrainingWindow(self, queue_benchmarks=self.queue_benchmarks)
            self.training_window.after.registered.connect(lambda _name: self.chat.refresh_models())
        self.training_window.show()
        self.training_window.raise_()
        return self.training_window
