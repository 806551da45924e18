"""Runs the chat off the UI thread: model loading and generation on the one-thread "model" lane.

Pieces of the answer come back as signals as they are generated; a stop cancels between tokens.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, QRunnable, Signal

from app import workers
from sarlang_core.progress import CancelToken
from sarlang_core.services.ask import ask_scene

log = logging.getLogger(__name__)


class StreamSignals(QObject):
    image = Signal(object)            # the ModelImage about to be sent
    piece = Signal(str, float)        # text, time.perf_counter() when it was produced
    finished = Signal(object)         # the Exchange
    failed = Signal(str, object)      # message, the Exchange (it keeps what was said)


class AskTask(QRunnable):
    """Runs services.ask.ask_scene: renders the model's image, then streams the answer into the
    conversation."""

    def __init__(self, backend, session, conversation, request, cancel: CancelToken):
        super().__init__()
        self.signals = StreamSignals()
        self._args = (backend, session, conversation, request)
        self.cancel = cancel

    def run(self) -> None:
        workers.lower_thread_priority()
        backend, session, conversation, request = self._args
        try:
            for piece in ask_scene(backend, session, conversation, request, cancel=self.cancel,
                                   on_image=self.signals.image.emit):
                self.signals.piece.emit(piece, time.perf_counter())
                if self.cancel.cancelled:
                    break
        except Exception as exc:  # shown in the panel; the conversation keeps what it had
            log.info("asking the model failed", exc_info=True)
            ex = conversation.exchanges[-1] if conversation.exchanges and conversation.exchanges[-1].question else None
            self.signals.failed.emit(str(exc), ex)
            return
        self.signals.finished.emit(conversation.exchanges[-1])


class ChatController(QObject):
    loaded = Signal(object)            # identity dict
    loadFailed = Signal(str)
    loadProgress = Signal(str)
    piece = Signal(str, float)
    finished = Signal(object)
    failed = Signal(str, object)
    imageReady = Signal(object)        # ModelImage

    def __init__(self, parent=None):
        super().__init__(parent)
        self.backend = None
        self._task: AskTask | None = None
        self._cancel: CancelToken | None = None
        self._live = set()

    @property
    def busy(self) -> bool:
        return self._cancel is not None

    def load(self, backend) -> None:
        old, self.backend = self.backend, backend

        def run(progress=None):
            if old is not None:
                old.unload()
            backend.load(progress=progress)
            return backend.identity()

        self.loadProgress.emit("Loading model…")
        workers.submit("model", "load", run,
                       on_result=lambda _r, ident: self.loaded.emit(ident),
                       on_error=lambda _r, exc: self.loadFailed.emit(str(exc)),
                       on_progress=lambda _r, p: self.loadProgress.emit(f"Loading: {p.stage} {p.message}".strip()))

    def ask(self, session, conversation, request) -> None:
        """Answer ``request`` (services.ask.AskRequest) about ``session``'s scene into ``conversation``."""
        self._cancel = CancelToken()
        task = AskTask(self.backend, session, conversation, request, self._cancel)
        sig = task.signals
        self._live.add(sig)
        sig.piece.connect(self.piece)
        sig.image.connect(self.imageReady)
        sig.finished.connect(self._done)
        sig.failed.connect(self._failed)
        self._task = task
        task.setAutoDelete(True)
        workers.pool("model").start(task)

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    def _done(self, exchange) -> None:
        self._cancel = None
        self._live.clear()
        self.finished.emit(exchange)

    def _failed(self, message, exchange) -> None:
        self._cancel = None
        self._live.clear()
        self.failed.emit(message, exchange)

    def unload(self) -> None:
        if self.backend is not None:
            backend, self.backend = self.backend, None
            workers.submit("model", "unload", backend.unload)
