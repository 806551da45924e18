"""Connects the chat panel to the open scene, the Pipeline, the views and the model lane."""

from __future__ import annotations

from PySide6.QtCore import QObject, QRectF

from app.viewer.box_overlay import BoxOverlay
from sarlang_core.errors import SarlangError
from sarlang_core.services.ask import (
    AskRequest,
    Conversation,
    action_request,
    check_request,
    conversation_boxes,
    describe_box,
    save_geojson,
)
from sarlang_core.services.models import (
    GenerationConfig,
    backend_for_choice,
    open_backend,
    registered_models,
    training_pipeline_note,
)

from .controller import ChatController
from .panel import ChatPanel


class ChatWiring(QObject):
    def __init__(self, window, panel: ChatPanel):
        super().__init__(window)
        self.win = window
        self.panel = panel
        self.controller = ChatController(self)
        self.conversation = None
        self.model_key = ""          # the picker's key of the model loading / loaded ("registry:NAME", a folder)
        self.overlays = [BoxOverlay(v) for v in window.compare.views()]
        self._t_piece = []          # token latency samples: produced -> shown (ms)
        panel.askRequested.connect(lambda text, source: self.ask(text, source))
        panel.actionRequested.connect(self.run_action)
        panel.stopRequested.connect(self.controller.stop)
        panel.loadRequested.connect(self.load)
        panel.newChatRequested.connect(self.new_chat)
        panel.exportRequested.connect(self.export_transcript)
        panel.geojsonRequested.connect(self.export_geojson)
        c = self.controller
        c.loaded.connect(self._loaded)
        c.loadFailed.connect(lambda msg: (panel.set_model_status(f"⚠ {msg}"), panel.set_busy(False)))
        c.loadProgress.connect(panel.set_model_status)
        c.piece.connect(self._piece)
        c.imageReady.connect(lambda img: panel.set_thumbnail(img.thumbnail()))
        c.finished.connect(self._finished)
        c.failed.connect(self._failed)
        window.sceneOpened.connect(lambda _p: self.new_chat())
        self.refresh_models()

    # -- models ---------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        choices = []
        try:
            choices += [(label, f"registry:{name}") for label, name in registered_models()]
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ model registry: {exc}")
        choices.append(("Model folder…", "folder"))
        choices.append(("OpenAI-compatible endpoint…", "endpoint"))
        self.panel.set_models(choices)

    def load(self, key: str) -> None:
        from PySide6.QtWidgets import QFileDialog, QInputDialog

        try:
            if key.startswith("registry:"):
                backend = backend_for_choice(key)
            elif key == "folder":
                folder = QFileDialog.getExistingDirectory(self.win, "Model folder")
                if not folder:
                    return
                backend = backend_for_choice(folder)
            elif key == "endpoint":
                url, ok = QInputDialog.getText(self.win, "Endpoint", "Base URL (OpenAI-compatible):",
                                               text="http://localhost:8000/v1")
                if not ok or not url:
                    return
                model, ok = QInputDialog.getText(self.win, "Endpoint", "Served model name:")
                if not ok or not model:
                    return
                backend = open_backend(model, endpoint=url)
            else:
                return
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        self.load_backend(backend, key)

    def load_backend(self, backend, key: str = "") -> None:
        self.model_key = key
        self.panel.set_busy(True)
        self.controller.load(backend)

    def _loaded(self, identity) -> None:
        self.panel.set_busy(False)
        text = f"{identity.get('model')}" + (f" + {identity['adapter']}" if identity.get("adapter") else "")
        where = identity.get("endpoint") or f"{identity.get('device', '')} {identity.get('dtype', '')}".strip()
        if identity.get("backend") == "onnxruntime":   # which provider it really runs on
            where = f"ONNX Runtime · {str(identity.get('device', '')).upper()} {identity.get('dtype', '')}".strip()
        if identity.get("decoding") in ("static", "compiled"):
            where += " · " + ("compiled decoding" if identity["decoding"] == "compiled" else "static KV cache")
        gpu = getattr(self.controller.backend, "gpu_memory", lambda: None)()
        mem = f" · GPU {gpu['allocated_mb']:.0f} MB" if gpu and "allocated_mb" in gpu else ""
        note = training_pipeline_note(self.model_key, self.win.renderer.pipeline) if self.model_key else ""
        notes = "".join(f"\n⚠ {n}" for n in (identity.get("provider_note"), identity.get("decoding_note"), note) if n)
        self.panel.set_model_status(f"✓ {text} ({where}){mem}{notes}")

    # -- asking ---------------------------------------------------------------------------------
    def new_chat(self) -> None:
        session = self.win.session
        self.conversation = Conversation(str(session.scene.path), self.win.renderer.pipeline) if session else None
        self.panel.clear()
        for o in self.overlays:
            o.clear()

    def run_action(self, key: str, text: str, source: str) -> None:
        """One of the paper's seven applications; 'refer' names the drawn region in the question."""
        if self.win.session is None:
            return
        scene = self.win.session.scene
        region = self.win.compare.region_rect()
        try:
            request = action_request(key, text, source=source, scene_size=(scene.width, scene.height),
                                     view_rect=_rect_tuple(self.win.compare.active_view().visible_rect()),
                                     region_rect=None if region.isEmpty() else _rect_tuple(region),
                                     **self._request_fields())
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        self.submit(request)

    def ask(self, question: str, source: str) -> None:
        """A typed question about the scene, the current view or the drawn region."""
        rect = None
        if source == "viewport":
            rect = _rect_tuple(self.win.compare.active_view().visible_rect())
        elif source == "region" and not self.win.compare.region_rect().isEmpty():
            rect = _rect_tuple(self.win.compare.region_rect())
        try:
            request = AskRequest(question, source=source, rect=rect, **self._request_fields())
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        self.submit(request)

    def _request_fields(self) -> dict:
        return {"pipeline": self.win.renderer.pipeline,
                "config": GenerationConfig(max_new_tokens=self.panel.max_tokens.value())}

    def submit(self, request: AskRequest) -> None:
        """Send ``request`` to the loaded model on the model lane (services.ask.ask_scene)."""
        if self.controller.busy:
            return
        if self.controller.backend is None:
            self.panel.set_model_status("⚠ Load a model first")
            return
        session = self.win.session
        if session is None:
            return
        try:
            x, y, w, h = check_request(request, session.scene)
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        if self.conversation is None or self.conversation.pipeline != request.pipeline:
            self.conversation = Conversation(str(session.scene.path), request.pipeline)
        self.panel.start_answer(request.question, f"{request.source} [{x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}] · "
                                f"{request.pipeline.describe()}")
        self._t_piece = []
        self.controller.ask(session, self.conversation, request)

    def _piece(self, text: str, produced: float) -> None:
        import time

        self.panel.append_piece(text)
        self._t_piece.append((time.perf_counter() - produced) * 1000)

    def _finished(self, exchange) -> None:
        note = "stopped" if exchange.stopped else ""
        if exchange.boxes:
            note += (" · " if note else "") + f"{len(exchange.boxes)} box(es) drawn on the scene"
        self.panel.finish_answer(note)
        self.show_boxes(exchange)

    def _failed(self, message: str, exchange) -> None:
        self.panel.finish_answer(f"⚠ {message}")

    def show_boxes(self, exchange) -> None:
        scene = self.win.session.scene if self.win.session else None
        for o in self.overlays:
            o.set_boxes(exchange.boxes, describe=lambda b: describe_box(b, scene))

    # -- export ---------------------------------------------------------------------------------
    def export_transcript(self, path: str) -> None:
        if self.conversation is not None:
            self.conversation.save(path)
            self.win.statusBar().showMessage(f"Saved conversation to {path}", 5000)

    def export_geojson(self, path: str) -> None:
        if self.conversation is None or self.win.session is None:
            return
        boxes = conversation_boxes(self.conversation)
        save_geojson(path, boxes, self.win.session.scene)
        self.win.statusBar().showMessage(f"Saved {len(boxes)} boxes to {path}", 5000)


def _rect_tuple(r: QRectF):
    return (r.left(), r.top(), r.width(), r.height())
