"""Keyboard-first review of a dataset project's items.

A accept · X reject · E edit (Ctrl+Enter saves) · → / N next · ← / P previous · Ctrl+Z undo.
Accept and reject move on to the next item; every change is one transaction in the store, so
closing the window (or a crash) loses nothing.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import workers
from app.datasets.review_actions import ReviewActionBar, build_dataset_menu
from app.viewer.box_overlay import BoxOverlay
from app.viewer.scene_view import SceneView
from sarlang_core.services.dataset_review import (
    ITEM_TYPES,
    SARDET_CATEGORIES,
    STATUSES,
    ReviewProject,
    matching_ids,
    project_counts,
    render_chip,
)


@dataclass
class _Box:
    box: tuple
    label: str
    kind: str = "box"


class ReviewWindow(QMainWindow):
    queueReady = Signal()       # a new queue (after a filter change or new items) is in place

    def __init__(self, store_path: str, parent=None, reviewer: Optional[str] = None):
        super().__init__(parent)
        self.setObjectName("ReviewWindow")
        self.setWindowTitle(f"Review — {Path(store_path).name}")
        self.resize(1300, 800)
        self.store_path = Path(store_path)
        self.store = ReviewProject.open(store_path)     # the project, through the review service
        self.root = self.store.root
        self.current = None
        self._total = self._reviewed = 0      # project-wide counts, filled in off the UI thread
        self._queue_rid = self._counts_rid = 0
        self.closed = False       # set by closeEvent: late results from workers are then dropped
        self._shown_image: Optional[str] = None
        self.llm_dialog = None
        self.step_dialogs: dict = {}
        self.queue_loading = False
        self.queue = self.store.queue(snapshot=())   # empty until apply_filters' read comes in
        self.reviewer = reviewer or getpass.getuser()
        self.pipeline = self.store.pipeline
        self._build()
        self.apply_filters()

    # -- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        central = QWidget()
        lay = QVBoxLayout(central)
        row = QHBoxLayout()
        self.status_filter = self._combo("status_filter", ["pending", "any", *[s for s in STATUSES if s != "pending"]])
        self.type_filter = self._combo("type_filter", ["any", *ITEM_TYPES])
        self.flag_filter = self._combo("flag_filter", ["any", "flagged"])
        self.category_filter = self._combo("category_filter", ["any", *SARDET_CATEGORIES])
        for label, combo in (("Status", self.status_filter), ("Type", self.type_filter), ("Flags", self.flag_filter),
                             ("Category", self.category_filter)):
            row.addWidget(QLabel(label))
            row.addWidget(combo)
            combo.currentIndexChanged.connect(self.apply_filters)
        self.accept_all = QPushButton("Accept all shown", objectName="accept_all")
        self.reject_all = QPushButton("Reject all shown", objectName="reject_all")
        self.accept_all.clicked.connect(lambda: self.bulk("accepted"))
        self.reject_all.clicked.connect(lambda: self.bulk("rejected"))
        row.addStretch(1)
        row.addWidget(self.accept_all)
        row.addWidget(self.reject_all)
        lay.addLayout(row)

        split = QSplitter()
        self.sar_view = SceneView("SAR (the project's Pipeline)", with_histogram=False)
        self.overlay = BoxOverlay(self.sar_view)
        self.optical = QLabel("no optical pair", objectName="optical", alignment=Qt.AlignmentFlag.AlignCenter)
        self.optical.setMinimumWidth(200)
        self.optical.hide()     # shown with the first optical pair: most projects have none
        split.addWidget(self.sar_view)
        split.addWidget(self.optical)
        right = QWidget()
        rl = QVBoxLayout(right)
        self.meta = QLabel("", objectName="item_meta", wordWrap=True)
        self.question = QPlainTextEdit(objectName="question", readOnly=True)
        self.answer = QPlainTextEdit(objectName="answer", readOnly=True)
        self.question.setMaximumHeight(90)
        self.flags = QLabel("", objectName="flags", wordWrap=True)
        self.flags.setStyleSheet("color: #ffb000;")
        self.actions_bar = ReviewActionBar(self)      # the buttons, and the keys (A, X, E, ...)
        for w in (self.meta, QLabel("Question"), self.question, QLabel("Answer"), self.answer, self.flags,
                  self.actions_bar):
            rl.addWidget(w)
        rl.addStretch(1)
        split.addWidget(right)
        split.setSizes([520, 300, 420])
        lay.addWidget(split, 1)
        self.progress = QLabel("", objectName="progress")
        lay.addWidget(self.progress)
        self.setCentralWidget(central)
        from PySide6.QtWidgets import QDockWidget

        from .stats_view import DatasetStatsView

        self.stats_view = DatasetStatsView()
        self.stats_view.set_store(str(self.store_path))
        dock = QDockWidget("Statistics", self)
        dock.setObjectName("dock:dataset-stats")
        dock.setWidget(self.stats_view)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.act_llm, self.step_actions, self.act_use_pipeline = build_dataset_menu(self)

    def use_main_pipeline(self) -> None:
        """Record the main window's current Pipeline as the project's, and show the chips through it."""
        panel = getattr(self.parent(), "pipeline_panel", None)
        if panel is None:
            return
        self.pipeline = panel.pipeline()
        self.store.set_pipeline(self.pipeline)
        self.statusBar().showMessage(f"Project Pipeline: {self.pipeline.describe()}", 8000)
        if self.current is not None:
            self._shown_image = None            # the same chip, rendered again through the new Pipeline
            self._show_image(self.current.image_id)

    def open_llm_dialog(self):
        """The LLM generation dialog (one per window, kept so a running job survives closing it)."""
        from .llm_generation_dialog import LLMGenerationDialog

        if self.llm_dialog is None:
            self.llm_dialog = LLMGenerationDialog(str(self.store_path), self)
            self.llm_dialog.generated.connect(self._store_changed)
        self.llm_dialog.show()
        self.llm_dialog.raise_()
        return self.llm_dialog

    def open_step(self, key: str):
        """A Dataset step dialog ("import", "templates", "qc", "split", "export"), one per step and
        kept, so a running step survives closing it; its result refreshes the queue and statistics.
        "Run quality checks" starts on opening."""
        from .step_dialogs import step_dialog

        dialogs = self.step_dialogs
        if key not in dialogs:
            dlg = dialogs[key] = step_dialog(key, str(self.store_path), self)
            dlg.changed.connect(self._store_changed)
            if key == "qc":
                dlg.showFlagged.connect(lambda: self.flag_filter.setCurrentIndex(self.flag_filter.findData("flagged")))
        dlg = dialogs[key]
        dlg.show()
        dlg.raise_()
        if key == "qc" and not dlg.running:
            dlg.start()
        return dlg

    def _store_changed(self, *_):
        """New items arrived from outside the queue (an LLM run): rebuild the queue and statistics."""
        if not self.editing:
            self.apply_filters()
        self.stats_view.store_changed()

    @staticmethod
    def _combo(name, values) -> QComboBox:
        c = QComboBox(objectName=name)
        for v in values:
            c.addItem(v, v)
        return c

    # -- queue ----------------------------------------------------------------------------------
    def filters(self) -> dict:
        f = {}
        for key, combo in (("status", self.status_filter), ("type", self.type_filter),
                           ("category", self.category_filter)):
            if combo.currentData() != "any":
                f[key] = combo.currentData()
        if self.flag_filter.currentData() == "flagged":
            f["flag"] = True
        return f

    def apply_filters(self) -> None:
        """Rebuild the queue for the filters: the matching ids are read off the UI thread (about
        0.5 s on a million items); keys act on the new queue once it is in (``queueReady``)."""
        if self.closed:
            return      # a dataset step finishing after the window closed has nothing to show
        filters = self.filters()
        self._queue_rid += 1
        self.queue_loading = True
        self.meta.setText("Finding the matching items…")
        workers.submit("review", ("queue", self._queue_rid), matching_ids, str(self.store_path), filters,
                       on_result=self._queue_ready, on_error=self._queue_failed)
        self._refresh_counts()

    def _queue_ready(self, rid, payload) -> None:
        if self.closed or rid != ("queue", self._queue_rid):
            return      # the window was closed, or the filters changed again meanwhile
        filters, ids = payload
        self.queue = self.store.queue(snapshot=ids, **filters)
        self.queue_loading = False
        self.show_item(self.queue.next())
        self.queueReady.emit()

    def _queue_failed(self, rid, exc) -> None:
        if rid == ("queue", self._queue_rid):
            self.queue_loading = False
            self.meta.setText(f"Could not read the items: {exc}")

    def _refresh_counts(self) -> None:
        """Project-wide counts, read off the UI thread on a connection of their own (they take
        ~1 s on a million items) and then kept up to date by each decision, so stepping through
        items stays instant."""
        self._counts_rid += 1
        workers.submit("stats", ("counts", self._counts_rid), project_counts, str(self.store_path),
                       on_result=self._counts_ready, on_error=self._counts_failed)

    def _counts_failed(self, _rid, exc) -> None:
        self.statusBar().showMessage(f"Could not count the project's items: {exc}", 10000)

    def _counts_ready(self, rid, stats: dict) -> None:
        if self.closed or rid != ("counts", self._counts_rid):
            return      # closed, or a newer count is on its way
        self._total = stats.get("items", 0)
        self._reviewed = stats.get("reviewed", 0)
        self.stats_view.show_stats(stats)
        self._show_progress()       # only the counts line: an edit in progress stays as typed

    def next(self) -> None:
        if not self.editing:
            item = self.queue.next()
            self.show_item(item if item is not None else self.queue.current())

    def previous(self) -> None:
        if not self.editing:
            item = self.queue.previous()
            self.show_item(item if item is not None else self.queue.current())

    # -- decisions ------------------------------------------------------------------------------
    @property
    def editing(self) -> bool:
        return not self.answer.isReadOnly()

    def decide(self, status: str) -> None:
        item = self.queue.current()
        if item is None or self.editing:
            return
        self._reviewed += self.store.decide(item, status, reviewer=self.reviewer)
        self.stats_view.store_changed()
        self.next()

    def start_edit(self) -> None:
        if self.queue.current() is None:
            return
        for w in (self.question, self.answer):
            w.setReadOnly(False)
        self.actions_bar.update_state(has_item=self.current is not None, editing=self.editing)
        self.answer.setFocus()

    def save_edit(self) -> None:
        item = self.queue.current()
        if item is None or not self.editing:
            return
        self._reviewed += self.store.edit(item, question=self.question.toPlainText().strip(),
                                          answer=self.answer.toPlainText().strip(), reviewer=self.reviewer)
        self.stats_view.store_changed()
        self.cancel_edit()
        self.next()

    def cancel_edit(self) -> None:
        for w in (self.question, self.answer):
            w.setReadOnly(True)
        self.show_item(self.queue.current())

    def undo(self) -> None:
        item_id = self.store.undo(reviewer=self.reviewer)
        if item_id is not None:
            self._refresh_counts()
            self.stats_view.store_changed()
            self.queue.goto(item_id)
            self.show_item(self.store.item(item_id))

    def bulk(self, status: str) -> None:
        n = self.store.count(self.filters())
        if n and QMessageBox.question(self, "Bulk review", f"Mark {n:,} items as {status}? (Ctrl+Z undoes it)") \
                == QMessageBox.StandardButton.Yes:
            self.bulk_apply(status)

    def bulk_apply(self, status: str) -> int:
        n = self.store.bulk(self.filters(), status, reviewer=self.reviewer)
        self.apply_filters()
        self.stats_view.store_changed()
        return n

    # -- showing --------------------------------------------------------------------------------
    def _show_progress(self) -> None:
        done, total = self._reviewed, self._total
        pos = f"{self.queue.position + 1:,}" if self.current is not None else "0"
        self.progress.setText(f"Item {pos} / {self.queue.total:,} in this queue · reviewed {done:,} of {total:,} "
                              f"({100.0 * done / max(total, 1):.1f} %) · reviewer {self.reviewer}")

    def show_item(self, item) -> None:
        self.current = item
        self._show_progress()
        self.actions_bar.update_state(has_item=self.current is not None, editing=self.editing)
        if item is None:
            self.meta.setText("Nothing to review with these filters.")
            self.question.setPlainText("")
            self.answer.setPlainText("")
            self.flags.setText("")
            self.overlay.clear()
            return
        self.meta.setText(f"#{item.id} · {item.type} · {item.source} · <b>{item.status}</b> · image {item.image_id}")
        self.question.setPlainText(item.question)
        self.answer.setPlainText(item.answer)
        flags = self.store.flags(item.id)
        self.flags.setText("\n".join(f"⚠ {msg}" for _code, msg in flags))
        self._show_image(item.image_id)

    def _resolve(self, path: Optional[str]) -> Optional[str]:
        if not path:
            return None
        p = Path(path)
        for cand in (p, self.root / p, Path.cwd() / p):
            if cand.exists():
                return str(cand)
        return None

    def _show_image(self, image_id: str) -> None:
        rec = self.store.image(image_id)
        boxes = [_Box((b.bbox[0], b.bbox[1], b.bbox[0] + b.bbox[2], b.bbox[1] + b.bbox[3]), b.category)
                 for b in self.store.boxes(image_id)]
        path = self._resolve(rec.path)
        if path is None:
            self.sar_view.image.clear()
            self.meta.setText(self.meta.text() + f" · ⚠ image file not found: {rec.path}")
        elif self._shown_image != path:
            self._shown_image = path
            workers.submit("io", ("chip", path), render_chip, path, self.pipeline,
                           on_result=lambda rid, img: self._image_ready(rid[1], img, rec))
        self.overlay.set_boxes(boxes)
        optical = self._resolve(rec.optical_path)
        if optical:
            self.optical.show()
            self.optical.setPixmap(QPixmap(optical).scaled(self.optical.size(), Qt.AspectRatioMode.KeepAspectRatio))
        else:
            self.optical.setText("no optical pair")

    def _image_ready(self, path: str, image, rec) -> None:
        if self.closed or path != self._shown_image:
            return  # the reviewer has moved on (or closed the window)
        import numpy as np

        rgba = np.dstack([image, image, image, np.full_like(image, 255)])
        from app.viewer.render_controller import Display
        self.sar_view.set_extent(image.shape[1], image.shape[0], fit=True)
        self.sar_view.show_display(Display(rgba, (0.0, 255.0), np.zeros(1), np.zeros(1)),
                                   QRectF(0, 0, image.shape[1], image.shape[0]))

    def closeEvent(self, event) -> None:
        self.closed = True        # results still on their way (queue, counts, chips) are dropped
        if self.llm_dialog is not None:
            self.llm_dialog.cancel()       # finished pairs are stored by the job itself
        self.stats_view.similarity.cancel()
        self.store.close()
        super().closeEvent(event)
