"""Per-sample browser of one benchmark run: where does the model fail?

A filterable, sortable table of the run's samples (verdict, type / application, text search) and,
for the selected one, the image as the model saw it (rendered through the run's Pipeline on the
"io" lane), the question, the ground truth, the prediction, the verdict and the judge's reply.
Caption runs have no verdict: their rows show each sample's BLEU / ROUGE_L / CIDEr (sortable as
numbers), "Show" offers the worst 10 % / 25 % by CIDEr, and the detail lists all six scores.
"""

from __future__ import annotations

import html
import math
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSplitter,
    QStyledItemDelegate,
    QTableView,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app import workers

from .sample_model import (  # noqa: F401  (COLUMNS, VERDICT_STYLE: this module's names before)
    CAPTION_WIDTHS,
    COLUMNS,
    VERDICT_STYLE,
    VQA_WIDTHS,
    SampleTableModel,
    sample_html,
    score_of,
    verdict_kind,
)

VERDICT_FILTERS = (("all", "All samples"), ("wrong", "Wrong"), ("undecided", "Undecided"), ("errors", "Errors"),
                   ("correct", "Correct"), ("pending", "Not predicted yet"))
CAPTION_FILTERS = (("all", "All samples"), ("worst10", "Worst 10 % by CIDEr"), ("worst25", "Worst 25 % by CIDEr"),
                   ("zero", "CIDEr of 0"), ("errors", "Errors"), ("pending", "Not predicted yet"))
WORST = {"worst10": 0.10, "worst25": 0.25}
RANK_KEY = "CIDEr"      # what "worst" means for captions: the paper's headline caption metric


def load_samples(run_dir: str):
    """Worker side: (rows, Pipeline or None) of a run."""
    from sarlang_core.services import benchmarks

    cfg = benchmarks.run_config(run_dir)
    rows = benchmarks.run_samples(run_dir)
    for r in rows:
        r["_kind"] = verdict_kind(r)
        r["_app"] = r["application"]
    return rows, cfg.pipeline_object(), cfg.task


def render_sample(path: str, pipeline) -> QImage:
    """Worker side: the image as the run gave it to the model."""
    from sarlang_core.services.model_input import render_file

    im = render_file(path, pipeline).convert("RGB")
    data = im.tobytes()
    return QImage(data, im.width, im.height, 3 * im.width, QImage.Format.Format_RGB888).copy()


MAX_ID_WIDTH = 320


class MiddleElide(QStyledItemDelegate):
    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


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
        self._fill_show_filter(VERDICT_FILTERS)
        self.type_filter = QComboBox(objectName="type_filter")
        self.search = QLineEdit(objectName="sample_search", placeholderText="Search question, answer, prediction, id…")
        self.search.setClearButtonEnabled(True)
        for w, label in ((self.verdict_filter, "Show"), (self.type_filter, "Type / application")):
            row.addWidget(QLabel(label))
            row.addWidget(w)
        self.verdict_filter.currentIndexChanged.connect(self._show_filter_changed)
        self.type_filter.currentIndexChanged.connect(self.apply_filters)
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
        self.table.setItemDelegateForColumn(0, MiddleElide(self.table))     # ids differ at their end
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._set_widths()
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

    def _fill_show_filter(self, choices) -> None:
        keep = self.verdict_filter.currentData()
        self.verdict_filter.blockSignals(True)
        self.verdict_filter.clear()
        for key, label in choices:
            self.verdict_filter.addItem(label, key)
        self.verdict_filter.setCurrentIndex(max(0, self.verdict_filter.findData(keep)))
        self.verdict_filter.blockSignals(False)

    def _set_widths(self) -> None:
        for col, width in enumerate(CAPTION_WIDTHS if self.task == "caption" else VQA_WIDTHS):
            self.table.setColumnWidth(col, width)

    def _fit_id_column(self, rows) -> None:
        """Sample ids (``caption_concise:P0012.png``) are longer than the preset width: fit the longest."""
        col = self.model.column_of("ID")
        if col < 0 or not rows:
            return
        metrics = self.table.fontMetrics()
        longest = max(metrics.horizontalAdvance(str(r["id"])) for r in rows)
        self.table.setColumnWidth(col, min(max(self.table.columnWidth(col), longest + 16), MAX_ID_WIDTH))

    def _show_filter_changed(self) -> None:
        """The worst-by-CIDEr views list the lowest CIDEr first (the user can sort otherwise after)."""
        col = self.model.column_of(RANK_KEY)
        if self.verdict_filter.currentData() in (*WORST, "zero") and col >= 0:
            self.table.horizontalHeader().setSortIndicator(col, Qt.SortOrder.AscendingOrder)
        self.apply_filters()

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
        rows, self.pipeline, task = result
        same = run_dir == self.run_dir
        self.run_dir = run_dir
        self.task = task
        if self.model.set_task(task):
            self._fill_show_filter(CAPTION_FILTERS if task == "caption" else VERDICT_FILTERS)
            self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
            self._set_widths()
        placeholder = "Search reference, prediction, id…" if task == "caption" else \
            "Search question, answer, prediction, id…"
        self.search.setPlaceholderText(placeholder)
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
        self._fit_id_column(rows)

    # -- filtering ----------------------------------------------------------------------------------
    def apply_filters(self) -> None:
        rows = self.model.rows
        kind = self.verdict_filter.currentData()
        tf = self.type_filter.currentData()
        needle = self.search.text().strip().lower()

        def in_type(r: dict) -> bool:
            return not tf or (r["_app"] if tf[0] == "app" else (r.get("type") or "")) == tf[1]

        worst, cut = self._worst(rows, kind, in_type)

        def keep(r: dict) -> bool:
            if worst is not None and r["id"] not in worst \
                    or kind == "zero" and score_of(r, RANK_KEY) != 0.0:
                return False
            if kind == "wrong" and r["_kind"] != "wrong" or kind == "undecided" and r["_kind"] != "undecided" \
                    or kind == "errors" and r["_kind"] != "error" or kind == "correct" and r["_kind"] != "correct" \
                    or kind == "pending" and r["_kind"] != "pending":
                return False
            if not in_type(r):
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
        if cut is not None:
            parts.append(f"{RANK_KEY} ≤ {cut * 100:.2f}")
        if kinds.count("error"):
            parts.append(f"{kinds.count('error')} error(s)")
        if self.task == "caption" and any(r["_kind"] == "predicted" and not r.get("scores") for r in rows):
            parts.append("some predictions have no scores yet: Resume the run to score them")
        self.counts.setText(" · ".join(parts))
        target = next((r for r in range(len(shown)) if self.model.row_at(r)["id"] == current), 0 if shown else -1)
        if target >= 0:
            self.table.selectRow(target)
            self._show(target)
        else:
            self.current = None
            self.text.setHtml('<p style="color:#9aa3ad">No sample matches the filters.</p>')
            self.image.clear()

    @staticmethod
    def _worst(rows, kind, in_type):
        """(ids of the worst share by CIDEr among the scored rows of the chosen type, the highest
        CIDEr among them), or (None, None) when "Show" is not a worst-share view."""
        if kind not in WORST:
            return None, None
        pool = sorted((r for r in rows if in_type(r) and score_of(r, RANK_KEY) is not None),
                      key=lambda r: score_of(r, RANK_KEY))
        picked = pool[:math.ceil(WORST[kind] * len(pool))]
        return {r["id"] for r in picked}, (score_of(picked[-1], RANK_KEY) if picked else None)

    # -- one sample ---------------------------------------------------------------------------------
    def _show(self, r: int) -> None:
        row = self.model.row_at(r)
        if row is None or row is self.current and self.text.toPlainText():
            return
        self.current = row
        self.text.setHtml(sample_html(row, self.task))
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

