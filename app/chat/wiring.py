"""Connects the chat panel to the open scene, the Pipeline, the views and the model lane."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import QObject, QRectF

from sarlang_core.errors import SarlangError
from sarlang_core.vlm.backend import GenerationConfig

from app.viewer.box_overlay import BoxOverlay
from .controller import ChatController
from .panel import ChatPanel


class ChatWiring(QObject):
    def __init__(self, window, panel: ChatPanel):
        super().__init__(window)
        self.win = window
        self.panel = panel
        self.controller = ChatController(self)
        self.conversation = None
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
        from sarlang_core.vlm.models import load_registry

        choices = []
        try:
            for entry in load_registry():
                choices.append((entry.name + (" + adapter" if entry.adapter else ""), f"registry:{entry.name}"))
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ model registry: {exc}")
        choices.append(("Model folder…", "folder"))
        choices.append(("OpenAI-compatible endpoint…", "endpoint"))
        self.panel.set_models(choices)

    def load(self, key: str) -> None:
        from PySide6.QtWidgets import QFileDialog, QInputDialog

        from sarlang_core.vlm.factory import make_backend

        try:
            if key.startswith("registry:"):
                backend = make_backend(key.split(":", 1)[1])
            elif key == "folder":
                folder = QFileDialog.getExistingDirectory(self.win, "Model folder")
                if not folder:
                    return
                backend = make_backend(folder)
            elif key == "endpoint":
                url, ok = QInputDialog.getText(self.win, "Endpoint", "Base URL (OpenAI-compatible):",
                                               text="http://localhost:8000/v1")
                if not ok or not url:
                    return
                model, ok = QInputDialog.getText(self.win, "Endpoint", "Served model name:")
                if not ok or not model:
                    return
                backend = make_backend(model, endpoint=url)
            else:
                return
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        self.load_backend(backend)

    def load_backend(self, backend) -> None:
        self.panel.set_busy(True)
        self.controller.load(backend)

    def _loaded(self, identity) -> None:
        self.panel.set_busy(False)
        text = f"{identity.get('model')}" + (f" + {identity['adapter']}" if identity.get("adapter") else "")
        where = identity.get("endpoint") or f"{identity.get('device', '')} {identity.get('dtype', '')}".strip()
        gpu = getattr(self.controller.backend, "gpu_memory", lambda: None)()
        mem = f" · GPU {gpu['allocated_mb']:.0f} MB" if gpu and "allocated_mb" in gpu else ""
        self.panel.set_model_status(f"✓ {text} ({where}){mem}")

    # -- asking ---------------------------------------------------------------------------------
    def new_chat(self) -> None:
        from sarlang_core.services.chat import Conversation

        session = self.win.session
        self.conversation = Conversation(str(session.scene.path), self.win.renderer.pipeline) if session else None
        self.panel.clear()
        for o in self.overlays:
            o.clear()

    def run_action(self, key: str, text: str, source: str) -> None:
        """One of the paper's seven applications; 'refer' names the drawn region in the question."""
        from sarlang_core.vlm.boxes import ModelView, from_scene
        from sarlang_core.vlm.prompts import action

        act = action(key)
        region = None
        if act.needs_region:
            r = self.win.compare.region_rect()
            if r.isEmpty():
                self.panel.set_model_status("⚠ Draw a region first (R): the question names it")
                return
            if source == "region":
                source = "scene"   # the region is named in the question, the model sees around it
            x0, y0, w, h = _rect_tuple(r)
            crop = self._crop(source)
            region = from_scene((x0, y0, x0 + w, y0 + h), "sarlang", ModelView(crop, (1, 1)))
        try:
            prompt = act.prompt(text or None, region)
            shown = act.question(text or None, region)
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return
        self.ask(shown, source, prompt=prompt)

    def _crop(self, source: str):
        scene = self.win.session.scene
        if source == "viewport":
            from sarlang_core.services.model_input import clip_rect
            return clip_rect(_rect_tuple(self.win.compare.active_view().visible_rect()), scene.width, scene.height)
        return (0.0, 0.0, float(scene.width), float(scene.height))

    def ask(self, question: str, source: str, prompt: str = None) -> None:
        from sarlang_core.services.model_input import model_image
        from sarlang_core.vlm.prompts import caption_prompt, vqa_prompt

        if self.controller.busy:
            return
        if self.controller.backend is None:
            self.panel.set_model_status("⚠ Load a model first")
            return
        if not question:
            self.panel.set_model_status("⚠ The question is empty")
            return
        session = self.win.session
        if session is None:
            return
        pipeline = self.win.renderer.pipeline
        if self.conversation is None or self.conversation.pipeline != pipeline:
            from sarlang_core.services.chat import Conversation
            self.conversation = Conversation(str(session.scene.path), pipeline)
        rect = None
        if source == "viewport":
            rect = _rect_tuple(self.win.compare.active_view().visible_rect())
        elif source == "region":
            r = self.win.compare.region_rect()
            if r.isEmpty():
                self.panel.set_model_status("⚠ Draw a region first (R), or ask about the scene")
                return
            rect = _rect_tuple(r)
        if prompt is None:
            prompt = question if question == caption_prompt() else vqa_prompt(question)
        max_pixels = 1024 * 1024
        try:
            from sarlang_core.services.model_input import clip_rect
            if rect is not None:
                clip_rect(rect, session.scene.width, session.scene.height)
        except SarlangError as exc:
            self.panel.set_model_status(f"⚠ {exc}")
            return

        def make_image():
            return model_image(session, pipeline, source=source, rect=rect, max_pixels=max_pixels)

        x, y, w, h = rect or (0, 0, session.scene.width, session.scene.height)
        self.panel.start_answer(question, f"{source} [{x:.0f}, {y:.0f}, {w:.0f}, {h:.0f}] · "
                                f"{pipeline.describe()}")
        config = GenerationConfig(max_new_tokens=self.panel.max_tokens.value())
        self._t_piece = []
        self.controller.ask(self.conversation, make_image, prompt, config)

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
            o.set_boxes(exchange.boxes, describe=lambda b: _describe_box(b, scene))

    # -- export ---------------------------------------------------------------------------------
    def export_transcript(self, path: str) -> None:
        if self.conversation is not None:
            self.conversation.save(path)
            self.win.statusBar().showMessage(f"Saved conversation to {path}", 5000)

    def export_geojson(self, path: str) -> None:
        import json

        from sarlang_core.vlm.boxes import boxes_to_feature_collection

        if self.conversation is None or self.win.session is None:
            return
        boxes = [(b.box, b.label, b.convention) for ex in self.conversation.exchanges for b in ex.boxes]
        target = Path(path)
        tmp = target.with_name(f".{target.name}.part")
        tmp.write_text(json.dumps(boxes_to_feature_collection(boxes, self.win.session.scene), indent=2), encoding="utf-8")
        tmp.replace(target)
        self.win.statusBar().showMessage(f"Saved {len(boxes)} boxes to {path}", 5000)


def _rect_tuple(r: QRectF):
    return (r.left(), r.top(), r.width(), r.height())


def _describe_box(box, scene) -> str:
    x0, y0, x1, y1 = box.box
    text = f"{box.label or box.kind}: pixels ({x0:.0f}, {y0:.0f}) – ({x1:.0f}, {y1:.0f})"
    if scene is not None and scene.georeferenced:
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        mx, my = scene.pixel_to_map(cx, cy)
        text += f"\ncentre map {mx:,.1f}, {my:,.1f}"
        ll = scene.pixel_to_lonlat(cx, cy)
        if ll is not None and not any(math.isnan(v) for v in ll):
            text += f"\ncentre {ll[1]:.5f}°, {ll[0]:.5f}°"
    return text
