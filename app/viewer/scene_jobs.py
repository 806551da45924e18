"""Long work on a scene (overview building, export) on the "jobs" lane, with progress."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from app import workers
from sarlang_core.errors import CancelledError
from sarlang_core.progress import CancelToken


class SceneJobs(QObject):
    progress = Signal(str, float)
    message = Signal(str)
    error = Signal(str, str)
    overviewsReady = Signal(str)
    exported = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cancels = []

    def _token(self) -> CancelToken:
        token = CancelToken()
        self._cancels.append(token)
        return token

    def cancel_all(self) -> None:
        for t in self._cancels:
            t.cancel()
        self._cancels.clear()

    def _failed(self, title: str):
        def handler(_rid, exc):
            self.progress.emit("", 1.0)
            if isinstance(exc, CancelledError):
                self.message.emit(f"{title}: cancelled")
            else:
                self.error.emit(title, str(exc))
        return handler

    def _progress(self, stage: str):
        return lambda _rid, p: self.progress.emit(stage, p.fraction)

    # -- overviews ----------------------------------------------------------------------------
    def maybe_build_overviews(self, session) -> bool:
        scene = session.scene
        # Small scenes without overviews get in-memory levels from the I/O layer ("memory");
        # "none" means a scene too large for that: build real ones, in the cache.
        if scene.overview_source != "none":
            return False
        self.message.emit("This scene has no overviews: building them in the background (cached, "
                          "your file is not modified)…")
        self.build_overviews(session)
        return True

    def build_overviews(self, session, force: bool = False) -> None:
        from sarlang_core.services import build_overviews

        path = str(session.scene.path)

        def done(_rid, _result):
            self.progress.emit("", 1.0)
            self.message.emit("Overviews ready")
            self.overviewsReady.emit(path)

        workers.submit("jobs", ("overviews", path), build_overviews, path, cancel=self._token(),
                       on_result=done, on_error=self._failed("Building overviews failed"),
                       on_progress=self._progress("overviews"))

    # -- export -------------------------------------------------------------------------------
    def export(self, session, pipeline, out: str) -> None:
        from sarlang_core.services.export import export_processed

        def done(_rid, result):
            self.progress.emit("", 1.0)
            self.message.emit(f"Exported {result}")
            self.exported.emit(str(result))

        workers.submit("jobs", ("export", out), export_processed, session, pipeline, out, overwrite=True,
                       cancel=self._token(), on_result=done, on_error=self._failed("Export failed"),
                       on_progress=self._progress("export"))

    def save_png(self, render, path: str) -> str:
        """Small and already in memory: written right away, atomically; nodata transparent.
        A failure (no room, no permission) is shown and leaves nothing behind."""
        from sarlang_core.errors import SarlangError
        from sarlang_core.services.export import save_view_png

        try:
            target = save_view_png(render, path)
        except SarlangError as exc:
            self.error.emit("Cannot save the view", str(exc))
            return None
        self.message.emit(f"Saved view to {target}")
        return str(target)
