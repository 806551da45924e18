"""The main window: wires menus, panels and the compare view to the core services."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QByteArray, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QProgressBar, QToolButton

from app.chat.panel import ChatPanel
from app.chat.wiring import ChatWiring
from app.explain.panel import ExplainPanel
from app.explain.wiring import ExplainWiring
from app.main_window_dialogs import FileDialogsMixin
from app.viewer.compare_view import SIDE, SWIPE, CompareView
from app.viewer.cursor_readout import cursor_text
from app.viewer.pipeline_panel import PipelinePanel
from app.viewer.render_controller import RenderController
from app.viewer.scene_jobs import SceneJobs
from app.viewer.stats_panel import RegionStatsPanel
from app.window_geometry import fit_to_screen, scrolling
from sarlang_core.errors import PipelineError, SarlangError
from sarlang_core.preprocess.pipeline import Pipeline
from sarlang_core.services import Window
from sarlang_core.services.scene_session import filter_device_note

from . import settings as app_settings
from . import workers

log = logging.getLogger(__name__)

OPEN_FILTER = "SAR scenes (*.tif *.tiff *.TIF *.TIFF *.vrt *.img *.npy *.png *.jpg *.jpeg);;All files (*)"


class MainWindow(FileDialogsMixin, QMainWindow):
    sceneOpened = Signal(str)
    openFailed = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._open_request = 0
        self._shown_once = self._restored_geometry = False
        self._filter_note_shown = False    # the "preprocessing left the GPU" note is said once
        self.new_project_dialog = None     # made when first asked for (File > New dataset project)
        self.benchmark_window = None       # made when first asked for (Tools > Benchmarks)
        self.training_window = None        # made when first asked for (Tools > Fine-tuning)
        self.setObjectName("MainWindow")
        self.setWindowTitle("SARLANG Studio")
        self.resize(1500, 900)
        self.setAcceptDrops(True)
        self.session = None

        self.compare = CompareView()
        self.setCentralWidget(self.compare)
        self.renderer = RenderController(self.compare, self)
        self.jobs = SceneJobs(self)

        self.pipeline_panel = PipelinePanel()
        self.stats_panel = RegionStatsPanel()
        # The two left panels stacked are taller than a 768-px screen: they scroll instead of
        # forcing the window's minimum height.
        # Where there is room (1080 px), each gets its natural height rather than half.
        left = [self._dock("Pipeline", scrolling(self.pipeline_panel), Qt.DockWidgetArea.LeftDockWidgetArea),
                self._dock("Region statistics", scrolling(self.stats_panel), Qt.DockWidgetArea.LeftDockWidgetArea)]
        wrap = 60   # the pipeline's wrapped limits and recipe lines are taller than its hint says
        self.resizeDocks(left, [self.pipeline_panel.sizeHint().height() + wrap, self.stats_panel.sizeHint().height()],
                         Qt.Orientation.Vertical)
        self.chat_panel = ChatPanel()
        chat_dock = self._dock("Chat", self.chat_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.resizeDocks([chat_dock], [360], Qt.Orientation.Horizontal)
        self.explain_panel = ExplainPanel()    # per-word maps: a tab beside the chat (fits 768 px)
        explain_dock = self._dock("Word maps", scrolling(self.explain_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(chat_dock, explain_dock)
        chat_dock.raise_()

        self._build_status_bar()
        self._build_actions()
        self._wire()
        self.chat = ChatWiring(self, self.chat_panel)
        self.explain = ExplainWiring(self, self.chat, self.explain_panel, explain_dock)
        self._restore_settings()

    # -- construction -------------------------------------------------------------------------
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock:{title}")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.cursor_label = QLabel("", objectName="cursor_label")
        self.cursor_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scene_label = QLabel("", objectName="scene_label")
        self.job_bar = QProgressBar(objectName="job_bar", maximumWidth=180, maximum=1000)
        self.job_bar.hide()
        self.job_cancel = QToolButton(objectName="job_cancel", text="Cancel")
        self.job_cancel.setToolTip("Stop the running export / overview build (nothing half-written is left)")
        self.job_cancel.hide()
        sb.addWidget(self.cursor_label, 1)
        sb.addPermanentWidget(self.job_bar)
        sb.addPermanentWidget(self.job_cancel)
        sb.addPermanentWidget(self.scene_label)

    def _build_actions(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_open = file_menu.addAction("&Open scene…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.act_sample = file_menu.addAction("Open &sample scene", self.open_sample)
        file_menu.addSeparator()
        self.act_export = file_menu.addAction("&Export processed GeoTIFF…", self.export_dialog, QKeySequence("Ctrl+E"))
        self.act_png = file_menu.addAction("Export current view as &PNG…", self.export_png_dialog,
                                           QKeySequence("Ctrl+Shift+E"))
        self.act_overviews = file_menu.addAction("Build &overviews (cache)", self.build_overviews)
        self.act_new_dataset = file_menu.addAction("&New dataset project…", self.new_dataset_dialog)
        self.act_review = file_menu.addAction("Re&view dataset project…", self.review_dialog)
        file_menu.addSeparator()
        self.act_save_pipe = file_menu.addAction("Save pipeline JSON…", self.save_pipeline_dialog)
        self.act_load_pipe = file_menu.addAction("Load pipeline JSON…", self.load_pipeline_dialog)
        file_menu.addSeparator()
        file_menu.addAction("&Quit", self.close, QKeySequence.StandardKey.Quit)

        view_menu = mb.addMenu("&View")
        group = QActionGroup(self)
        self.act_side = QAction("Side by side", self, checkable=True, checked=True, shortcut=QKeySequence("1"))
        self.act_swipe = QAction("Swipe", self, checkable=True, shortcut=QKeySequence("2"))
        for a in (self.act_side, self.act_swipe):
            group.addAction(a)
            view_menu.addAction(a)
        self.act_side.triggered.connect(lambda: self.set_compare_mode(SIDE))
        self.act_swipe.triggered.connect(lambda: self.set_compare_mode(SWIPE))
        view_menu.addSeparator()
        self.act_fit = view_menu.addAction("Zoom to &fit", self.compare.fit, QKeySequence("F"))
        self.act_region = view_menu.addAction("&Region statistics tool", lambda: self.compare.start_region(),
                                              QKeySequence("R"))
        for dock in self.findChildren(QDockWidget):
            view_menu.addAction(dock.toggleViewAction())

        tools_menu = mb.addMenu("&Tools")
        self.act_benchmarks = tools_menu.addAction("&Benchmarks…", self.open_benchmarks)
        self.act_training = tools_menu.addAction("&Fine-tuning…", self.open_training)

        help_menu = mb.addMenu("&Help")
        help_menu.addAction("&About SARLANG Studio", self._about)

        tb = self.addToolBar("Main")
        tb.setObjectName("toolbar:main")
        for a in (self.act_open, self.act_export, self.act_png):
            tb.addAction(a)
        tb.addSeparator()
        for a in (self.act_side, self.act_swipe, self.act_fit, self.act_region):
            tb.addAction(a)
        self._refresh_recent()

    def _wire(self) -> None:
        self.pipeline_panel.pipelineChanged.connect(self._pipeline_changed)
        self.stats_panel.draw.clicked.connect(lambda: self.compare.start_region())
        self.compare.hovered.connect(self._hovered)
        self.compare.regionChanged.connect(self._region_changed)
        self.renderer.limitsChanged.connect(self.pipeline_panel.set_limits_text)
        self.renderer.failed.connect(lambda msg: self.statusBar().showMessage(f"⚠ {msg}", 8000))
        self.renderer.jobProgress.connect(self._job_progress)
        self.renderer.rendered.connect(lambda *_: self._refresh_region())
        self.renderer.rendered.connect(lambda *_: self._note_filter_device())
        self.jobs.progress.connect(self._job_progress)
        self.jobs.message.connect(lambda msg: self.statusBar().showMessage(msg, 8000))
        self.jobs.error.connect(self.show_error)
        self.jobs.overviewsReady.connect(self._overviews_ready)
        self.job_cancel.clicked.connect(self.jobs.cancel_all)

    def _note_filter_device(self) -> None:
        """Say once, in the status bar, that preprocessing left a GPU that failed (it goes on on the CPU)."""
        note = filter_device_note()
        if note and not self._filter_note_shown:
            self._filter_note_shown = True
            self.statusBar().showMessage(f"⚠ {note}", 15000)

    # -- opening ------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(Path(app_settings.recent_files()[0]).parent) if app_settings.recent_files() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open SAR scene", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_sample(self) -> None:
        from sarlang_core.resources import sample_scene_path
        self.open_path(str(sample_scene_path()))

    def open_path(self, path: str, *, keep_view: Optional[QRectF] = None) -> int:
        """Open a scene off the UI thread; ``sceneOpened`` or ``openFailed`` follows. On failure a
        dialog says why and the current scene stays open. Returns the request id."""
        from sarlang_core.services import SceneSession

        self._open_request += 1
        rid = self._open_request
        self.statusBar().showMessage(f"Opening {path}…")
        workers.submit("io", rid, SceneSession.open, path,
                       on_result=lambda r, session: self._opened(r, path, session, keep_view),
                       on_error=lambda r, exc: self._open_failed(r, path, exc))
        return rid

    def _opened(self, rid: int, path: str, session, keep_view: Optional[QRectF]) -> None:
        if rid != self._open_request:   # the user already asked for another scene
            session.close()
            return
        old, self.session = self.session, session
        self._install_session(session)
        if keep_view is not None:
            self.compare.set_view(keep_view)
        if old is not None:
            old.close()
        app_settings.add_recent(str(Path(path).resolve()))
        self._refresh_recent()
        self.statusBar().showMessage(f"Opened {path}", 4000)
        self.sceneOpened.emit(path)

    def _open_failed(self, rid: int, path: str, exc: BaseException) -> None:
        if rid != self._open_request:
            return
        if isinstance(exc, SarlangError):
            message = str(exc)
        else:  # unexpected: still a dialog, never a crash
            message = f"{path}: {type(exc).__name__}: {exc}"
        self.statusBar().clearMessage()
        self.show_error("Cannot open scene", message)
        self.openFailed.emit(path, message)

    def _install_session(self, session) -> None:
        scene = session.scene
        pipe = self.pipeline_panel.pipeline()
        try:
            band = scene.band_index(pipe.band)
        except SarlangError:
            band = 0
        if band >= scene.count:
            band = 0
        pipe = pipe.with_(band=band)
        self.pipeline_panel.set_bands(scene.bands)
        self.pipeline_panel.set_pipeline(pipe, band)
        self._show_chain_warnings(session, pipe)
        self.renderer.set_session(session, pipe)
        self.compare.set_extent(scene.width, scene.height)
        self.stats_panel.clear("Draw a rectangle (R) to compare statistics before and after filtering.")
        self.setWindowTitle(f"{scene.name} — SARLANG Studio")
        levels = ", ".join(f"1:{lv.factor}" for lv in scene.levels)
        crs = scene.info().get("crs") or "no CRS"
        self.scene_label.setText(f"{scene.width:,} × {scene.height:,} px · {scene.count} band(s) · {scene.dtype} · "
                                 f"{crs if len(str(crs)) < 24 else str(crs)[:24] + '…'} · levels {levels}")
        for warning in getattr(scene, "warnings", []) or []:
            self.statusBar().showMessage(f"⚠ {warning}", 10000)
        self.jobs.maybe_build_overviews(session)
        self.renderer.schedule()

    def _overviews_ready(self, path: str) -> None:
        if self.session is not None and str(self.session.scene.path) == path:
            self.open_path(path, keep_view=self.compare.active_view().visible_rect())

    # -- pipeline -----------------------------------------------------------------------------
    def _pipeline_changed(self, pipeline: Pipeline) -> None:
        if self.session is not None:
            self._show_chain_warnings(self.session, pipeline)
        self.renderer.set_pipeline(pipeline)

    def _show_chain_warnings(self, session, pipeline: Pipeline) -> None:
        """dB input taken as linear and the like: in the pipeline panel for as long as it applies."""
        try:
            text = "\n".join(session.chain_warnings(pipeline))
        except SarlangError as exc:   # a band the scene lacks: the renderer reports it
            text = str(exc)
        self.pipeline_panel.set_warning(text)

    # -- view ---------------------------------------------------------------------------------
    def set_compare_mode(self, mode: str) -> None:
        self.compare.set_mode(mode)
        (self.act_side if mode == SIDE else self.act_swipe).setChecked(True)

    def _hovered(self, x: float, y: float) -> None:
        if self.session is not None:
            self.cursor_label.setText(cursor_text(self.session.scene, self.renderer, x, y))

    # -- region statistics ----------------------------------------------------------------------
    def _region_changed(self, rect: QRectF) -> None:
        self._refresh_region()

    def _refresh_region(self) -> None:
        rect = self.compare.region_rect()
        if self.session is None or rect.isEmpty():
            return
        scene = self.session.scene
        rect = rect.intersected(QRectF(0, 0, scene.width, scene.height))
        if rect.width() < 2 or rect.height() < 2:
            self.stats_panel.clear("The region is outside the scene.")
            return
        win = Window(int(rect.left()), int(rect.top()), max(2, int(rect.width())), max(2, int(rect.height())))
        text = f"Region {win.width}×{win.height} px at ({win.col_off}, {win.row_off})"
        pipeline = self.renderer.pipeline
        workers.submit("io", ("stats", win), self.session.region_stats, pipeline, win,
                       on_result=lambda _rid, pair: self.stats_panel.show_stats(pair, text),
                       on_error=lambda _rid, exc: self.stats_panel.clear(f"⚠ {exc}"))

    def build_overviews(self) -> None:
        if self.session is not None:
            self.jobs.build_overviews(self.session, force=True)

    def _job_progress(self, stage: str, fraction: float) -> None:
        if fraction >= 1.0 or not stage:
            self.job_bar.hide()
            self.job_cancel.hide()
            return
        self.job_bar.show()
        self.job_cancel.setVisible(stage != "exact stretch limits")
        self.job_bar.setFormat(f"{stage} %p%")
        self.job_bar.setValue(int(fraction * 1000))

    # -- errors, settings, drag and drop -------------------------------------------------------
    def show_error(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("error_dialog")
        box.open()  # non-blocking: the app keeps running (and tests can inspect it)
        self.last_error = message

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in app_settings.recent_files():
            self.recent_menu.addAction(path, lambda p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(app_settings.recent_files()))

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            event.acceptProposedAction()

    def _restore_settings(self) -> None:
        s = app_settings.settings()
        geometry = s.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
            self._restored_geometry = True
        state = s.value("window/state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        text = s.value("pipeline")
        if text:
            try:
                self.pipeline_panel.set_pipeline(Pipeline.from_json(str(text)))
            except PipelineError as exc:  # an old or hand-edited recipe: start from the defaults
                log.warning("the saved pipeline is not restored: %s", exc)
        if s.value("compare_mode") == SWIPE:
            self.set_compare_mode(SWIPE)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._shown_once and self._restored_geometry:
            self._shown_once = True
            # once shown (the frame's size is known then): a geometry saved on a bigger screen comes inside this one
            QTimer.singleShot(0, lambda: fit_to_screen(self, self.compare))

    def save_settings(self) -> None:
        s = app_settings.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("pipeline", self.pipeline_panel.pipeline().to_json(indent=None))
        s.setValue("compare_mode", self.compare.mode)
        if self.session is not None:
            s.setValue("last_scene", str(self.session.scene.path))
        s.sync()

    def closeEvent(self, event) -> None:
        for win in (self.benchmark_window, self.training_window):
            if win is not None and win.process.running and not win.close():
                event.ignore()     # that window asked; it stops its run cleanly first
                return
        self.save_settings()
        self.renderer.cancel()
        self.jobs.cancel_all()
        self.explain.cancel()
        self.chat.controller.stop()
        self.chat.controller.unload()
        workers.wait_all(3000)
        if self.session is not None:
            self.session.close()
        super().closeEvent(event)

    def _about(self) -> None:
        QMessageBox.about(self, "About SARLANG Studio",
                          "SARLANG Studio — SAR image interpretation with vision-language models.\n"
                          "Preprocessing after the SARLANG-1M paper: band selection, refined Lee "
                          "despeckling, 10·log10 and a linear percentile stretch.")

