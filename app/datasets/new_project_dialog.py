"""File ▸ New dataset project… (and the review window's Dataset ▸ Import more…).

What to import (SARDet-100K COCO boxes, released SARLANG-1M JSON/CSV, or SAR/optical pair
folders), where from, where the project goes, and optionally the paper's template questions right
away. The import runs on a worker; the summary lists every record that was left out or repaired
(file and line / id) while the valid ones are imported. An existing file is never overwritten: a
dataset project is added to once the user agrees, anything else is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QWidget

from sarlang_core.services.dataset_steps import ImportOutcome, ImportRequest, run_import

from .step_dialog import ERROR_STYLE, DatasetStepDialog, PathField

KINDS = (("coco", "COCO detection JSON (SARDet-100K) + images folder"),
         ("sarlang", "Released SARLANG-1M JSON or CSV + images folder"),
         ("pairs", "SAR / optical image pair folders (matched by file name)"))
# per kind: (label of the first path, its browse mode, file filter; label of the second path)
_PATHS = {"coco": ("Annotations (COCO JSON)", "open", "COCO annotations (*.json);;All files (*)", "Images folder"),
          "sarlang": ("Annotations (JSON or CSV)", "open", "SARLANG-1M annotations (*.json *.csv);;All files (*)",
                      "Images folder"),
          "pairs": ("SAR images folder", "folder", "", "Optical images folder")}
INTRO = ("Import detection boxes or released question-answer pairs into a dataset project (one SQLite file). "
         "Records that cannot be used are listed with their file and line or id; the valid ones are imported.")


class NewProjectDialog(DatasetStepDialog):
    openRequested = Signal(str)         # "Open for review" on the project just imported into

    run_text = "Import"

    def __init__(self, parent=None, store_path: Optional[str] = None):
        adding = store_path is not None
        super().__init__(f"Import more into {Path(store_path).name}" if adding else "New dataset project",
                         "NewProjectDialog", INTRO, parent)
        self.adding = adding
        self.kind = self.add_row("Import", self.combo("kind", KINDS))
        self.source = self.add_row("Annotations", PathField("source", caption="Choose the annotations"))
        self.folder = self.add_row("Images folder", PathField("folder", "folder", "Choose the images folder"))
        self.project = PathField("project", "save", "Save the dataset project as", "Dataset project (*.db)")
        if adding:
            self.project.setText(str(store_path))
        else:
            self.add_row("Save project as", self.project, "A new .db file; an existing dataset project is only "
                                                          "added to after you agree")
        self.templates = QCheckBox("Generate the paper's template questions now", objectName="templates")
        self.seed = self.spin("seed", 0, 0, 2**31 - 1)
        self.per_image = self.spin("per_image", 9, 1, 50)
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        for w in (self.templates, QLabel("seed"), self.seed, QLabel("items per image"), self.per_image):
            rl.addWidget(w)
        rl.addStretch(1)
        self.add_row("Questions", row)
        for w in (self.templates, self.seed, self.per_image):
            self.watch(w)
        self.templates.setChecked(True)
        self.templates.toggled.connect(self._templates_toggled)
        self.open_button = self.add_button("Open for review", "open_button", self.open_for_review)
        self.open_button.setVisible(not adding)
        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.source.edit.editingFinished.connect(self._suggest_project)
        self.source.browse.clicked.connect(self._suggest_project)
        self._kind_changed()
        self.resize(820, 600)

    # -- form -----------------------------------------------------------------------------------
    def _kind_changed(self, *_) -> None:
        kind = self.kind.currentData()
        first, mode, filt, second = _PATHS[kind]
        self.form.labelForField(self.source).setText(first)
        self.form.labelForField(self.folder).setText(second)
        self.source.mode, self.source.filter, self.source.caption = mode, filt, f"Choose the {first.lower()}"
        self.folder.caption = f"Choose the {second.lower()}"
        boxes = kind == "coco"
        self.templates.setEnabled(boxes and not self.running)
        self.templates.setToolTip("The paper's five template question types are asked about detection boxes"
                                  if boxes else "Only COCO annotations bring detection boxes to ask about")
        self._templates_toggled()

    def _templates_toggled(self, *_) -> None:
        on = self.templates.isChecked() and self.templates.isEnabled()
        self.seed.setEnabled(on)
        self.per_image.setEnabled(on)

    def _suggest_project(self) -> None:
        """A project file named after the annotations, beside them (only while none is given)."""
        src = self.source.text()
        if self.adding or not src or self.project.text():
            return
        p = Path(src)
        self.project.setText(str(p.parent / (p.name if self.kind.currentData() == "pairs" else p.stem)) + ".db")

    def _set_running(self, running: bool) -> None:
        super()._set_running(running)
        if not running:
            self._kind_changed()

    # -- running --------------------------------------------------------------------------------
    def request(self) -> ImportRequest:
        return ImportRequest(self.project.text(), self.kind.currentData(), self.source.text(), self.folder.text(),
                             templates=self.templates.isChecked() and self.kind.currentData() == "coco",
                             seed=self.seed.value(), per_image=self.per_image.value(),
                             replace=self._confirmed and self.agreed_option == "replace")

    def job(self, confirmed: bool) -> tuple:
        self.open_button.setEnabled(False)
        return run_import, (self.request(),), {"confirmed": confirmed, "adding": self.adding}

    def show_result(self, out: ImportOutcome) -> None:
        done = {f"{k} imported": v for k, v in out.summary.done.items()}
        if out.templates is not None:
            done["template items generated"] = out.templates.done.get("items", 0)
        name = Path(out.store_path).name
        problems = [self._short(p) for p in out.summary.problems]
        if out.removed:
            self.show_counts("Nothing could be imported, so no project was created. The problems below say why.",
                             done, ERROR_STYLE)
        else:
            verb = "Created" if out.created else "Added to"
            self.show_counts(f"{verb} {name}" + (f", with {len(problems):,} record(s) left out or repaired."
                                                 if problems else "; every record was imported."), done)
        self.set_list(f"{len(problems):,} problem(s): file, then line or record id", problems)
        self.open_button.setEnabled(not out.removed)

    def _short(self, line: str) -> str:
        """A problem line with the chosen paths shortened to their names."""
        for path in sorted({self.source.text(), self.folder.text()}, key=len, reverse=True):
            if path:
                line = line.replace(str(Path(path)), Path(path).name)
        return line

    def open_for_review(self) -> None:
        if self.outcome is not None and not self.outcome.removed:
            self.openRequested.emit(self.outcome.store_path)
            self.close()
