"""`sarlang`: start the GUI, on a scene given on the command line, the last one, or the sample."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def sample_scene_path() -> Path:
    """The bundled sample; rebuilt by its script when missing (e.g. a source checkout without it)."""
    path = RESOURCES / "sample_scene.tif"
    if not path.exists():
        import runpy
        runpy.run_path(str(RESOURCES.parent / "scripts" / "make_sample_scene.py"), run_name="__main__")
    return path


def make_app(argv=None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    apply_style(app)
    return app


def apply_style(app) -> None:
    app.setApplicationName("SARLANG Studio")
    app.setOrganizationName("SARLANG")
    style = RESOURCES / "style.qss"
    if style.exists():
        app.setStyleSheet(style.read_text(encoding="utf-8"))


def warm_up_kernels() -> None:
    """Compile (or load from the on-disk cache) the filter kernels off the UI thread at start-up."""
    import threading

    from sarlang_core.services import warm_up_filters as warmup
    from .workers import lower_thread_priority

    def run():
        lower_thread_priority()  # numba's worker pool, started here, inherits it
        warmup()

    threading.Thread(target=run, name="sarlang-warmup", daemon=True).start()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="sarlang", description="SARLANG Studio GUI")
    parser.add_argument("scene", nargs="?", help="a SAR scene to open (GeoTIFF, PNG/JPEG chip, .npy)")
    parser.add_argument("--screenshot", metavar="PNG", help="render, save a screenshot of the window and quit")
    args = parser.parse_args(argv)

    app = make_app()
    warm_up_kernels()
    from .main_window import MainWindow
    from . import settings as app_settings
    win = MainWindow()
    win.show()
    last = app_settings.settings().value("last_scene")
    target = args.scene or (last if last and Path(str(last)).exists() else None)
    if target:
        # a scene that no longer opens (moved, corrupted) falls back to the sample, once
        fallback = lambda *_: (win.openFailed.disconnect(fallback), win.open_sample())  # noqa: E731
        win.openFailed.connect(fallback)
        win.open_path(str(target))
    else:
        win.open_sample()
    if args.screenshot:
        from PySide6.QtCore import QTimer
        from . import workers
        import time
        deadline = time.monotonic() + 60

        def shoot():
            busy = workers.pool("io").activeThreadCount() or win.renderer.pending
            if (win.renderer.last_proc is None or busy) and time.monotonic() < deadline:
                QTimer.singleShot(100, shoot)
                return
            app.processEvents()
            win.grab().save(args.screenshot)
            win.close()

        QTimer.singleShot(300, shoot)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
