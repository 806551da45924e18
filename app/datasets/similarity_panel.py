"""The paper's dataset similarity (mean and variance of pairwise cosine similarity) for the
project's texts and, optionally, its images (statistics dock, "Similarity").

Runs ``services.datasets.similarity_stats`` on the "model" lane (it embeds with a model), with
progress and Cancel; a newer run or a closed window drops an older result.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app import workers
from sarlang_core.errors import CancelledError, SarlangError
from sarlang_core.progress import CancelToken

LANE = "model"
TEXT_KINDS = (("captions, or questions + answers", "auto"),
              ("captions", "captions"), ("questions", "questions"), ("answers", "answers"),
              ("questions + answers", "qa"))
COLUMNS = ("", "n", "pairs", "mean", "variance", "std", "paper mean / var")
STATUS_CHOICES = {"all items": None, "accepted + edited": ("accepted", "edited")}
_NOTE_STYLE = "color: #7a828c; font-size: 9pt;"
_ERROR_STYLE = "color: #ff6b6b;"


def compute(store_path: str, text: str, image_features: Optional[str], image_model: Optional[str], status=None, *,
            progress=None, cancel=None) -> tuple:
    """Worker side: (the service's {"text": {...}, "image": {...}}, the paper's reference values)."""
    from sarlang_core.services import datasets as svc

    result = svc.similarity_stats(store_path, text=text, image_features=image_features or None,
                                  image_model=image_model or None, status=status, progress=progress, cancel=cancel)
    return result, getattr(svc, "PAPER_SIMILARITY", {})


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


class _PathField(QWidget):
    def __init__(self, name: str, placeholder: str, pick, parent=None):
        super().__init__(parent)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit(objectName=name, placeholderText=placeholder, clearButtonEnabled=True)
        self.browse = QPushButton("Browse…", objectName=f"{name}_browse")
        self.browse.clicked.connect(lambda: self._pick(pick))
        row.addWidget(self.edit, 1)
        row.addWidget(self.browse)

    def _pick(self, pick) -> None:
        path = pick(self)
        if path:
            self.edit.setText(path)
            self.edit.textEdited.emit(path)

    def text(self) -> str:
        return self.edit.text().strip()


class SimilarityPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("SimilarityPanel")
        self.store_path: Optional[str] = None
        self.result: Optional[dict] = None
        self._rid = 0
        self._cancel: Optional[CancelToken] = None
        lay = QVBoxLayout(self)
        intro = QLabel("Mean and variance of the cosine similarity over all pairs, as in the paper's "
                       "Appendix A: lower mean = more diverse.", wordWrap=True)
        intro.setStyleSheet(_NOTE_STYLE)
        lay.addWidget(intro)
        form = QFormLayout()
        self.text_kind = QComboBox(objectName="similarity_text")
        for label, value in TEXT_KINDS:
            self.text_kind.addItem(label, value)
        form.addRow("Texts", self.text_kind)
        self.status_combo = QComboBox(objectName="similarity_status_filter")
        self.status_combo.addItems(list(STATUS_CHOICES))
        form.addRow("Items", self.status_combo)
        self.features = _PathField("image_features", "optional: image features (.npy, one row per image)",
                                   lambda w: QFileDialog.getOpenFileName(w, "Image features", "",
                                                                         "NumPy arrays (*.npy);;All files (*)")[0])
        self.image_model = _PathField("image_model", "optional: a local image model folder",
                                      lambda w: QFileDialog.getExistingDirectory(w, "Image model folder"))
        form.addRow("Image features", self.features)
        form.addRow("Image model", self.image_model)
        # one image source at a time: choosing one clears the other
        self.features.edit.textEdited.connect(lambda t: t and self.image_model.edit.clear())
        self.image_model.edit.textEdited.connect(lambda t: t and self.features.edit.clear())
        lay.addLayout(form)
        row = QHBoxLayout()
        self.compute_button = QPushButton("Compute similarity", objectName="compute_similarity")
        self.cancel_button = QPushButton("Cancel", objectName="cancel_similarity", enabled=False)
        self.compute_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar(objectName="similarity_progress", textVisible=True)
        self.progress.setValue(0)
        row.addWidget(self.compute_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress, 1)
        lay.addLayout(row)
        self.status = QLabel("", objectName="similarity_status", wordWrap=True)
        self.status.setStyleSheet(_NOTE_STYLE)
        lay.addWidget(self.status)
        self.table = QTableWidget(0, len(COLUMNS), objectName="similarity_table")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setFixedHeight(self.table.horizontalHeader().sizeHint().height() + 4)
        lay.addWidget(self.table)
        self.reference = QLabel("", objectName="similarity_reference", wordWrap=True)
        self.reference.setStyleSheet(_NOTE_STYLE)
        lay.addWidget(self.reference)
        lay.addStretch(1)

    def set_store(self, store_path: str) -> None:
        self.store_path = str(store_path)

    @property
    def running(self) -> bool:
        return self._cancel is not None

    def start(self) -> None:
        if self.store_path is None or self.running:
            return
        self._rid += 1
        self._cancel = CancelToken()
        self._set_running(True)
        self.status.setStyleSheet(_NOTE_STYLE)
        self.status.setText("starting…")
        self.progress.setRange(0, 0)
        workers.submit(LANE, ("similarity", self._rid), compute, self.store_path, self.text_kind.currentData(),
                       self.features.text(), self.image_model.text(), STATUS_CHOICES[self.status_combo.currentText()],
                       cancel=self._cancel,
                       on_result=self._done, on_error=self._failed, on_progress=self._progress)

    def cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.cancel_button.setEnabled(False)
            self.status.setText("cancelling…")

    def _set_running(self, running: bool) -> None:
        for w in (self.compute_button, self.text_kind, self.status_combo, self.features, self.image_model):
            w.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if not running:
            self._cancel = None

    def _progress(self, rid, p) -> None:
        if rid != ("similarity", self._rid):
            return
        if p.total > 0:
            self.progress.setRange(0, p.total)
            self.progress.setValue(p.done)
        self.status.setText(f"{p.stage}: {p.message}" if p.message else p.stage)

    def _done(self, rid, answer: tuple) -> None:
        if rid != ("similarity", self._rid):
            return
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.show_result(*answer)

    def _failed(self, rid, exc) -> None:
        if rid != ("similarity", self._rid):
            return
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        if isinstance(exc, CancelledError):
            self.status.setText("Cancelled.")
            return
        self.status.setStyleSheet(_ERROR_STYLE)
        self.status.setText(str(exc) if isinstance(exc, SarlangError) else f"Unexpected {type(exc).__name__}: {exc}")

    def show_result(self, result: dict, paper: Optional[dict] = None) -> None:
        self.result = result
        rows = [(name, stats) for name, stats in result.items() if isinstance(stats, dict)]
        self.table.setRowCount(len(rows))
        for r, (name, stats) in enumerate(rows):
            label = f"{name}: {stats.get('what', '')}".rstrip(": ")
            ref = (paper or {}).get(name) or {}
            ref_text = f"{ref['mean']:.2f} / {ref['var']:.2f}" if "mean" in ref and "var" in ref else "—"
            values = [label] + [_fmt(stats.get(k)) for k in ("n", "pairs", "mean", "var", "std")] + [ref_text]
            for c, text in enumerate(values):
                cell = QTableWidgetItem(text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                else:
                    cell.setToolTip(label)
                self.table.setItem(r, c, cell)
        self.table.resizeColumnsToContents()
        self.table.resizeRowsToContents()
        self.table.setFixedHeight(self.table.horizontalHeader().height() + 4 +
                                  sum(self.table.rowHeight(r) for r in range(len(rows))))
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.reference.setText("Paper: SARLANG-1M, Table 3 (SAR images; texts by all-MiniLM-L6-v2, images by VGG16)."
                               if paper else "")
        note = (result.get("text") or {}).get("note")
        self.status.setText(("Done." + (f" Note: {note}." if note else "")) if rows
                            else "Nothing to compare: too few items.")
