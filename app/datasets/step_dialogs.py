"""The review window's Dataset steps: template questions, quality checks, train/test split and
export of the training set. Each is a :class:`DatasetStepDialog` over ``app.datasets.jobs``; what
the project holds (counts, template items, splits, its Pipeline) is read off the UI thread when
the dialog opens and after every run, and shown where it changes what a step will do."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QDoubleSpinBox

from app import workers
from sarlang_core.services.dataset_steps import project_info, run_export, run_split, run_templates

from .new_project_dialog import NewProjectDialog
from .step_dialog import NOTE_STYLE, WARN_STYLE, DatasetStepDialog, PathField, error_text

QC_CODES = {"colour_word": "names a colour (SAR images show none)",
            "bad_answer": "answer outside its question type's vocabulary",
            "count_mismatch": "count disagrees with the image's boxes",
            "empty": "empty question, answer or caption",
            "too_long": "text over the word limit of its type",
            "unknown_type": "item type the dataset does not define",
            "duplicate": "same question or caption twice for one image",
            "near_duplicate": "caption nearly repeats another of the image"}


class ProjectStepDialog(DatasetStepDialog):
    """A step on one project: reads the project's counts on open and after each run."""

    def __init__(self, store_path: str, title: str, name: str, intro: str, parent=None, **kw):
        super().__init__(title, name, intro, parent, **kw)
        self.store_path = str(store_path)
        self.info = None
        self.changed.connect(lambda *_: self.refresh_info())

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh_info()

    def refresh_info(self) -> None:
        workers.submit("io", ("project-info", id(self)), project_info, self.store_path,
                       on_result=lambda _rid, info: self._info_ready(info),
                       on_error=lambda _rid, exc: self.note.setText(f"Cannot read the project: {error_text(exc)}"))

    def _info_ready(self, info: dict) -> None:
        self.info = info
        self.note.setStyleSheet(NOTE_STYLE)
        self.show_info(info)

    def show_info(self, info: dict) -> None:
        """Fill ``self.note`` from the project's counts."""

    def warn(self, text: str) -> None:
        self.note.setStyleSheet(WARN_STYLE)
        self.note.setText(text)


class GenerateTemplatesDialog(ProjectStepDialog):
    run_text = "Generate"

    def __init__(self, store_path: str, parent=None):
        super().__init__(store_path, "Generate template questions", "GenerateTemplatesDialog",
                         "The paper's five template question types (identification, classification, counting, "
                         "positioning, referring) asked about each image's detection boxes. The seed makes the "
                         "choice of questions reproducible.", parent, cancellable=True)
        self.seed = self.add_row("Seed", self.spin("seed", 0, 0, 2**31 - 1))
        self.per_image = self.add_row("Items per image", self.spin("per_image", 9, 1, 50),
                                      "About this many questions per image (the paper: ~9)")

    def show_info(self, info: dict) -> None:
        text = f"{info['images']:,} images · {info['boxes']:,} boxes · {info['items']:,} items."
        if info["template_items"]:
            self.warn(f"{text} {info['template_items']:,} template items exist already: images that have them "
                      f"are skipped, so generating again only asks about images without template items.")
        else:
            self.note.setText(text)

    def job(self, confirmed: bool) -> tuple:
        return run_templates, (self.store_path,), {"seed": self.seed.value(), "per_image": self.per_image.value(),
                                                   "confirmed": confirmed}

    def show_result(self, summary) -> None:
        self.show_counts(f"Generated {summary.done.get('items', 0):,} template items (seed {self.seed.value()}); "
                         f"they wait in the review queue as pending.", summary.done)


class QualityChecksDialog(ProjectStepDialog):
    run_text = "Run checks"
    showFlagged = Signal()

    def __init__(self, store_path: str, parent=None):
        super().__init__(store_path, "Quality checks", "QualityChecksDialog",
                         "Flags suspect items: colour words, answers outside their type's vocabulary, counts that "
                         "disagree with the boxes, empty or over-long texts and duplicates. Earlier flags are "
                         "replaced once all items are checked (Cancel keeps them); nothing is deleted.", parent,
                         cancellable=True)
        self.settings_box.hide()
        self.flagged_button = self.add_button("Review flagged items", "flagged_button", self._show_flagged)

    def show_info(self, info: dict) -> None:
        self.note.setText(f"{info['items']:,} items to check.")

    def job(self, confirmed: bool) -> tuple:
        from sarlang_core.services.datasets import run_quality_checks

        return run_quality_checks, (self.store_path,), {}

    def show_result(self, summary) -> None:
        done = summary.done
        counts = {"items checked": done.get("items checked", 0), "items flagged": done.get("items flagged", 0)}
        counts.update({f"{k[5:]}: {QC_CODES.get(k[5:], '')}".rstrip(": "): v
                       for k, v in sorted(done.items(), key=lambda kv: -kv[1]) if k.startswith("flag ")})
        flagged = counts["items flagged"]
        self.show_counts(f"{flagged:,} of {counts['items checked']:,} items flagged. In the review window, "
                         f"Flags ▸ flagged steps through them." if flagged else "No item was flagged.", counts)
        self.flagged_button.setEnabled(bool(flagged))

    def _show_flagged(self) -> None:
        self.showFlagged.emit()
        self.close()


class SplitDialog(ProjectStepDialog):
    run_text = "Split"

    def __init__(self, store_path: str, parent=None):
        super().__init__(store_path, "Split train/test", "SplitDialog",
                         "Splits by image, so no image is in both sets. Splits the images already have (from the "
                         "annotations or an earlier split) are kept; only the unassigned images are split.", parent)
        self.ratio = self.add_row("Train share", QDoubleSpinBox(objectName="ratio", minimum=0.05, maximum=0.95,
                                                                singleStep=0.05, decimals=2, value=0.7,
                                                                maximumWidth=160),
                                  "The share of the unassigned images that goes to train (the paper: 0.7)")
        self.seed = self.add_row("Seed", self.spin("seed", 0, 0, 2**31 - 1))

    def show_info(self, info: dict) -> None:
        per = info["images_per_split"]
        free = per.get("unassigned", 0)
        parts = " · ".join(f"{n:,} {k}" for k, n in sorted(per.items()))
        if free == 0 and info["images"]:
            self.warn(f"{info['images']:,} images: {parts}. Every image already has a split, and given splits are "
                      f"kept, so splitting again changes nothing.")
        else:
            self.note.setText(f"{info['images']:,} images: {parts or 'none'}. "
                              f"{info['images'] - free:,} keep their split; {free:,} will be split.")

    def job(self, confirmed: bool) -> tuple:
        return run_split, (self.store_path,), {"ratio": self.ratio.value(), "seed": self.seed.value()}

    def show_result(self, result) -> None:
        summary, kept = result
        self.show_counts(f"Split done; {kept:,} image(s) kept the split they already had.",
                         summary.done)


class ExportDialog(ProjectStepDialog):
    run_text = "Export"

    def __init__(self, store_path: str, parent=None):
        super().__init__(store_path, "Export training set", "ExportDialog",
                         "Writes the items and their images for fine-tuning, one file per split. Every file is "
                         "written under a temporary name and renamed into place, so none is ever half-written; "
                         "the dataset files come last, once every image is in place.",
                         parent, cancellable=True)
        self.format = self.add_row("Format", self.combo("format", (
            ("sharegpt", "ShareGPT for LLaMA-Factory (+ dataset_info.json)"), ("llava", "LLaVA JSON"),
            ("jsonl", "JSONL, one item per line"), ("csv", "CSV in SARLANG-1M columns (captions, VQA)"))))
        self.status = self.add_row("Items", self.combo("status", (
            ("accepted", "Reviewed: accepted and edited"), ("any", "Any status (pending and rejected too)"))))
        self.images = self.add_row("Images", self.combo("images", (
            (True, "Through the project's Pipeline, as 8-bit PNG (what the model sees)"),
            (False, "The original files, copied as they are"))))
        self.out = self.add_row("Output folder", PathField("out", "folder", "Choose the output folder"))
        self.out.setText(str(Path(store_path).with_name(Path(store_path).stem + "_training_set")))
        self.open_folder = self.add_button("Open folder", "open_folder", self._open_folder)

    def show_info(self, info: dict) -> None:
        origin = ("recorded in the project" if info["pipeline_recorded"]
                  else "the paper's chain; the project records none")
        self.images.setToolTip(f"Pipeline: {info['pipeline']} ({origin}); pipeline.json is written beside the images")
        text = (f"{info['reviewed_items']:,} of {info['items']:,} items are accepted or edited. "
                f"Pipeline: {info['pipeline']} ({origin}).")
        if not info["reviewed_items"]:
            self.warn(text + " Review items first (A accepts), or export items of any status.")
        else:
            self.note.setText(text)

    def job(self, confirmed: bool) -> tuple:
        self.open_folder.setEnabled(False)
        return run_export, (self.store_path, self.out.text()), {
            "fmt": self.format.currentData(), "status": self.status.currentData(),
            "preprocess": bool(self.images.currentData()), "confirmed": confirmed}

    def show_result(self, summary) -> None:
        self.show_counts(f"Exported to {Path(self.out.text()).name} as {self.format.currentText()}.", summary.done)
        files = list(summary.files)
        self.set_list(f"{len(files):,} file(s) written", files)
        self.open_folder.setEnabled(True)

    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(self.out.text()))


STEPS = {"templates": GenerateTemplatesDialog, "qc": QualityChecksDialog, "split": SplitDialog,
         "export": ExportDialog}


def step_dialog(key: str, store_path: str, parent=None) -> DatasetStepDialog:
    """The dialog of one Dataset step ("import", "templates", "qc", "split", "export")."""
    if key == "import":
        return NewProjectDialog(parent, store_path=store_path)
    return STEPS[key](store_path, parent)
