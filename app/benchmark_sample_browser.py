"""Per-sample browser of one benchmark run: where does the model fail?

A filterable, sortable table of the run's samples (verdict, type / application, text search) and,
for the selected one, the image as the model saw it (rendered through the run's Pipeline on the
"io" lane), the question, the ground truth, the prediction, the verdict and the judge's reply.
"""

from __future__ import annotations

import html
from typing import List, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from sarlang_core.evaluate.applications import application_of

from . import workers

COLUMNS = ("ID", "Verdict", "Type", "Question", "Ground truth", "Prediction", "Application")
VERDICT_FILTERS = (("all", "All samples"), ("wrong", "Wrong"), ("undecided", "Undecided"), ("errors", "Errors"),
                   ("correct", "Correct"), ("pending", "Not predicted yet"))
VERDICT_STYLE = {"correct": ("✓ correct", "#5cc08a"), "wrong": ("✗ wrong", "#e06c75"),
                 "undecided": ("? undecided", "#f0a050"), "error": ("⚠ error", "#e06c75"),
                 "pending": ("· pending", "#7d8590"), "predicted": ("predicted", "#9aa3ad")}


def verdict_kind(row: dict) -> str:
    if row.get("prediction") is None:
        return "error" if row.get("error") else "pending"
    v = row.get("verdict")
    if v is None:
        return "predicted"      # captions: scored over the whole set, not per sample
    return "undecided" if v.get("correct") is None else "correct" if v["correct"] else "wrong"


def load_samples(run_dir: str):
    """Worker side: (rows, Pipeline or None) of a run."""
    from sarlang_core.services import benchmarks

    cfg = benchmarks.run_config(run_dir)
    rows = benchmarks.run_samples(run_dir)
    for r in rows:
        r["_kind"] = verdict_kind(r)
        r["_app"] = application_of(r.get("type"))
    return rows, cfg.pipeline_object(), cfg.task


def render_sample(path: str, pipeline) -> QImage:
    """Worker side: the image as the run gave it to the model."""
    from sarlang_core.services.model_input import render_file

    im = render_file(path, pipeline).convert("RGB")
    data = im.tobytes()
    return QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888).copy()


class SampleTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: List[dict] = []
        self.shown: List[int] = []

    def set_rows(self, rows: List[dict], shown: List[int]) -> None:
        self.beginResetModel()
        self.rows, self.shown = rows, shown
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.shown)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    @staticmethod
    def cell(row: dict, col: int) -> str:
        name = COLUMNS[col]
        if name == "ID":
            return row["id"]
        if name == "Verdict":
            return VERDICT_STYLE[row["_kind"]][0]
        if name == "Type":
            return row.get("type") or ""
        if name == "Question":
            return row.get("question") or ""
        if name == "Ground truth":
            return " | ".join(row.get("references") or [])
        if name == "Prediction":
            p = row.get("prediction")
            return (p if p is not None else (row.get("error") or "")).replace("\n", " ")
        return row["_app"]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row, name = self.rows[self.shown[index.row()]], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            text = self.cell(row, index.column())
            return text if len(text) < 200 else text[:199] + "…"
        if role == Qt.ItemDataRole.ToolTipRole and name in ("Question", "Ground truth", "Prediction"):
            return self.cell(row, index.column())
        if role == Qt.ItemDataRole.ForegroundRole and (name == "Verdict" or
                                                       (name == "Prediction" and row["_kind"] == "error")):
            return QColor(VERDICT_STYLE[row["_kind"]][1])
        return None

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        self.layoutAboutToBeChanged.emit()
        self.shown.sort(key=lambda i: self.cell(self.rows[i], column).lower(),
                        reverse=order == Qt.SortOrder.DescendingOrder)
        self.layoutChanged.emit()

    def row_at(self, r: int) -> Optional[dict]:
        return self.rows[self.shown[r]] if 0 <= r < len(self.shown) else None


class SampleBrowserPanel(QWidget):
    sampleShown = Signal(str)        # sample id, once its details (not its image) are shown
    imageShown = Signal(str)         # sample id, once its image is shown

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("SampleBrowserPanel")
        self.run_dir: Optional[str] = None
        self.pipeline = None
        self.task = "vqa"
        self._request = 0           # image renders
        self._load_request = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        self.verdict_filter = QComboBox(objectName="verdict_filter")
        for key, label in VERDICT_FILTERS:
            self.verdict_filter.addItem(label, key)
        self.type_filter = QComboBox(objectName="type_filter")
        self.search = QLineEdit(objectName="sample_search", placeholderText="Search question, answer, prediction, id…")
        self.search.setClearButtonEnabled(True)
        for w, label in ((self.verdict_filter, "Show"), (self.type_filter, "Type / application")):
            row.addWidget(QLabel(label))
            row.addWidget(w)
            w.currentIndexChanged.connect(self.apply_filters)
        self.search.textChanged.connect(self.apply_filters)
        row.addWidget(self.search, 1)
        self.counts = QLabel("", objectName="sample_counts")
        self.counts.setStyleSheet("color: #9aa3ad;")
        row.addWidget(self.counts)
        lay.addLayout(row)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.model = SampleTableModel(self)
        self.table = QTableView(objectName="sample_table")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((56, 96, 96, 230, 110, 190, 130)):
            self.table.setColumnWidth(col, width)
        head.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._show(cur.row()))
        split.addWidget(self.table)

        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(4, 0, 0, 0)
        self.image = QLabel("", objectName="sample_image", alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setMinimumSize(200, 160)
        self.image.setStyleSheet("background: #0f1114; border: 1px solid #2a2e34; color: #7d8590;")
        self.image_caption = QLabel("", objectName="image_caption", wordWrap=True)
        self.image_caption.setStyleSheet("color: #7d8590; font-size: 8pt;")
        self.text = QTextBrowser(objectName="sample_detail")
        dl.addWidget(self.image, 1)
        dl.addWidget(self.image_caption)
        dl.addWidget(self.text, 1)
        split.addWidget(detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setSizes([640, 380])
        lay.addWidget(split, 1)
        self.current: Optional[dict] = None
        self.show_message("Select a run to browse its samples.")

    # -- loading ------------------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.run_dir = None
        self.model.set_rows([], [])
        self.counts.setText("")
        self.text.setHtml(f'<p style="color:#9aa3ad">{html.escape(text)}</p>')
        self.image.clear()
        self.image_caption.setText("")

    def load(self, run_dir: str) -> None:
        self._load_request += 1
        rid = self._load_request
        workers.submit("io", (rid, run_dir), load_samples, run_dir, on_result=self._loaded,
                       on_error=self._load_failed)

    def _load_failed(self, key, exc) -> None:
        if key[0] == self._load_request:
            self.show_message(f"⚠ cannot read the run: {exc}")

    def _loaded(self, key, result) -> None:
        rid, run_dir = key
        if rid != self._load_request:
            return
        rows, self.pipeline, self.task = result
        same = run_dir == self.run_dir
        self.run_dir = run_dir
        keep = self.type_filter.currentData() if same else None
        self.type_filter.blockSignals(True)
        self.type_filter.clear()
        self.type_filter.addItem("All types", None)
        for app in sorted({r["_app"] for r in rows}):
            self.type_filter.addItem(f"{app} (application)", ("app", app))
        for t in sorted({r.get("type") or "" for r in rows}):
            self.type_filter.addItem(t, ("type", t))
        i = self.type_filter.findData(keep)
        self.type_filter.setCurrentIndex(max(0, i))
        self.type_filter.blockSignals(False)
        self.model.rows = rows
        self.apply_filters()

    # -- filtering ----------------------------------------------------------------------------------
    def apply_filters(self) -> None:
        rows = self.model.rows
        kind = self.verdict_filter.currentData()
        tf = self.type_filter.currentData()
        needle = self.search.text().strip().lower()

        def keep(r: dict) -> bool:
            if kind == "wrong" and r["_kind"] != "wrong" or kind == "undecided" and r["_kind"] != "undecided" \
                    or kind == "errors" and r["_kind"] != "error" or kind == "correct" and r["_kind"] != "correct" \
                    or kind == "pending" and r["_kind"] != "pending":
                return False
            if tf and (r["_app"] if tf[0] == "app" else (r.get("type") or "")) != tf[1]:
                return False
            if needle:
                hay = " ".join([r["id"], r.get("question") or "", " ".join(r.get("references") or []),
                                r.get("prediction") or "", r.get("error") or ""]).lower()
                return needle in hay
            return True

        shown = [i for i, r in enumerate(rows) if keep(r)]
        current = self.current["id"] if self.current else None
        self.model.set_rows(rows, shown)
        head = self.table.horizontalHeader()
        if head.sortIndicatorSection() >= 0:
            self.model.sort(head.sortIndicatorSection(), head.sortIndicatorOrder())
        kinds = [r["_kind"] for r in rows]
        parts = [f"{len(shown)} of {len(rows)} shown"]
        if self.task == "vqa":
            parts += [f"{kinds.count(k)} {k}" for k in ("correct", "wrong", "undecided") if kinds.count(k)]
        if kinds.count("error"):
            parts.append(f"{kinds.count('error')} error(s)")
        self.counts.setText(" · ".join(parts))
        target = next((r for r in range(len(shown)) if self.model.row_at(r)["id"] == current), 0 if shown else -1)
        if target >= 0:
            self.table.selectRow(target)
            self._show(target)
        else:
            self.current = None
            self.text.setHtml('<p style="color:#9aa3ad">No sample matches the filters.</p>')
            self.image.clear()

    # -- one sample ---------------------------------------------------------------------------------
    def _show(self, r: int) -> None:
        row = self.model.row_at(r)
        if row is None or row is self.current and self.text.toPlainText():
            return
        self.current = row
        self.text.setHtml(sample_html(row))
        self.sampleShown.emit(row["id"])
        self._request += 1
        rid = self._request
        self.image.setText("rendering…")
        self.image_caption.setText(row.get("image") or "")
        workers.submit("io", (rid, row["id"]), render_sample, row["image"], self.pipeline,
                       on_result=self._image, on_error=self._image_failed)

    def _image(self, key, img: QImage) -> None:
        rid, sid = key
        if rid != self._request:
            return
        self._pixmap = QPixmap.fromImage(img)
        self._fit_image()
        how = "through the run's Pipeline" if self.pipeline is not None else "as stored"
        self.image_caption.setText(f"{self.current.get('image')} · {img.width()}×{img.height()} px, {how}")
        self.imageShown.emit(sid)

    def _image_failed(self, key, exc) -> None:
        if key[0] == self._request:
            self.image.setText(f"⚠ cannot show the image:\n{exc}")

    def _fit_image(self) -> None:
        pm = getattr(self, "_pixmap", None)
        if pm is not None and not pm.isNull():
            self.image.setPixmap(pm.scaled(self.image.size() * 0.98, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_image()


def sample_html(row: dict) -> str:
    e = lambda t: html.escape(str(t)).replace("\n", "<br>")
    label, colour = VERDICT_STYLE[row["_kind"]]
    refs = row.get("references") or []
    parts = [f'<p style="color:#7d8590">{e(row["id"])} · {e(row.get("type") or "")} · {e(row["_app"])}</p>',
             f'<p><b style="color:#8fb8e6">Question</b><br>{e(row.get("question") or "")}</p>',
             f'<p><b style="color:#8fb8e6">Ground truth</b><br>{"<br>".join(e(r) for r in refs) or "–"}</p>']
    if row.get("prediction") is not None:
        parts.append(f'<p><b style="color:#8fb8e6">Prediction</b><br>{e(row["prediction"])}</p>')
    if row.get("error"):
        parts.append(f'<p><b style="color:#e06c75">Model call failed</b><br>{e(row["error"])}<br>'
                     '<span style="color:#7d8590">Resume the run to retry it.</span></p>')
    v = row.get("verdict")
    if v is not None or row["_kind"] != "predicted":
        how = f' <span style="color:#7d8590">(by {e(v.get("how"))})</span>' if v and v.get("how") else ""
        parts.append(f'<p><b style="color:#8fb8e6">Verdict</b><br><b style="color:{colour}">{e(label)}</b>{how}</p>')
    if v and v.get("reply"):
        parts.append(f'<p><b style="color:#8fb8e6">Judge reply</b><br>{e(v["reply"])}</p>')
    if v and v.get("error"):
        parts.append(f'<p><b style="color:#f0a050">Judge problem</b><br>{e(v["error"])}</p>')
    return "".join(parts)
