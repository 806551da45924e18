"""`sarlang`: start the GUI, on a scene given on the command line, the last one, or the sample."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from sarlang_core.resources import icon_path, sample_scene_path, style_sheet_path

__all__ = ["main", "make_app", "apply_style", "configure_logging", "sample_scene_path"]

log = logging.getLogger(__name__)
LOG_DIR_ENV = "SARLANG_LOG_DIR"     # replaces the per-user log folder (tests, portable installs)


def configure_logging() -> Path | None:
    """Once per process: INFO and up to a rotating ``sarlang.log`` in the per-user log folder,
    WARNING and up to stderr (when there is one). Returns the log file, if it could be opened."""
    root = logging.getLogger()
    if any(getattr(h, "sarlang", False) for h in root.handlers):
        return None
    fmt = logging.Formatter("%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s")
    handlers: list = []
    if sys.stderr is not None:      # a windowed frozen build has none
        handlers.append(logging.StreamHandler())
        handlers[-1].setLevel(logging.WARNING)
    path, problem = None, None
    try:
        import platformdirs
        folder = Path(os.environ.get(LOG_DIR_ENV) or platformdirs.user_log_dir("sarlang-studio"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sarlang.log"
        handlers.append(RotatingFileHandler(path, maxBytes=2**20, backupCount=3, encoding="utf-8"))
    except OSError as exc:          # e.g. a read-only home: log to stderr only
        path, problem = None, exc
    for h in handlers:
        h.setFormatter(fmt)
        h.sarlang = True
        root.addHandler(h)
    root.setLevel(logging.INFO)
    if problem is not None:
        log.warning("no log file: %s", problem)
    return path


def make_app(argv=None):
    from PySide6.QtWidgets import QApplication

    from .gc_guard import install

    app = QApplication.instance() or QApplication(argv or sys.argv[:1])
    apply_style(app)
    install(app)    # Python's garbage collector runs on the UI thread only
    return app


def apply_style(app) -> None:
    app.setApplicationName("SARLANG Studio")
    app.setOrganizationName("SARLANG")
    if icon_path().exists():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon_path())))
    style = style_sheet_path()
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
    parser.add_argument("--self-test", action="store_true",
                        help="check this install offscreen (sample, preprocessing, window, the first registered "
                             "model) and exit 0 when it is good; with --screenshot, save the window too")
    args = parser.parse_args(argv)

    configure_logging()
    if args.self_test:
        from .self_test import run_self_test

        return run_self_test(make_app, args.screenshot)
    from .system_libs import display_problem

    problem = display_problem()
    if problem:             # else Qt aborts with a plugin message that names no package
        log.info("%s", problem)   # the log file keeps it; the terminal gets the sentence once
        print(problem, file=sys.stderr)
        return 1
    app = make_app()
    warm_up_kernels()
    from . import settings as app_settings
    from .main_window import MainWindow
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
        import time

        from PySide6.QtCore import QTimer

        from . import workers
        deadline = time.monotonic() + 60
        if app.platformName() == "offscreen":
            # its screen is 800 x 600 and a saved geometry is fitted into it after the show: shoot at
            # a desktop's size once that has run (the views then render again before the grab)
            QTimer.singleShot(50, lambda: win.resize(1500, 900))

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
