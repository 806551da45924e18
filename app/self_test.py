"""`sarlang --self-test`: is this install good? One line per check, exit 0 when all pass.

Runs offscreen (no display needed): opens the bundled sample through the services the GUI uses,
preprocesses it with the paper's chain (refined Lee, dB, percentile stretch: the default
Pipeline), renders the main window on it (optionally saving a screenshot) and, when a model is
registered, asks it one short question. Made for installers and field technicians: the last
line says 'self-test passed' or 'self-test failed: <reason>'.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, TextIO

__all__ = ["run_self_test"]

QUESTION = "What is in this image?"
MAX_NEW_TOKENS = 8
WINDOW_DEADLINE_S = 120.0


class CheckFailed(Exception):
    """A check did not pass; the message says what went wrong."""


def check_sample() -> str:
    from sarlang_core.preprocess.pipeline import Pipeline
    from sarlang_core.resources import sample_scene_path
    from sarlang_core.services import SceneSession, Window

    path = sample_scene_path()
    if not path.is_file():
        raise CheckFailed(f"the bundled sample scene is missing ({path})")
    session = SceneSession.open(path)
    try:
        level = len(session.scene.levels) - 1      # the coarsest level: the whole scene, quickly
        lv = session.scene.levels[level]
        render = session.render(Pipeline(), level, Window(0, 0, lv.width, lv.height))
    finally:
        session.close()
    image = render.image
    if image.size == 0 or int(image.max()) == int(image.min()):
        raise CheckFailed("the preprocessed sample is blank")
    return f"{path.name}: {lv.width}x{lv.height} at level {level}, {Pipeline().describe()}"


def check_window(screenshot: Optional[str], make_app: Callable[[], Any]) -> str:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from . import workers
    from .main_window import MainWindow

    app = make_app()
    win = MainWindow()
    failures: List[str] = []
    win.openFailed.connect(lambda path, msg: failures.append(f"{path}: {msg}"))
    win.show()
    win.open_sample()
    deadline = time.monotonic() + WINDOW_DEADLINE_S
    while time.monotonic() < deadline and not failures:
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        busy = workers.pool("io").activeThreadCount() or win.renderer.pending
        if win.renderer.last_proc is not None and not busy:
            break
        time.sleep(0.02)
    try:
        if failures:
            raise CheckFailed(f"the window could not open the sample: {failures[0]}")
        if win.renderer.last_proc is None:
            raise CheckFailed(f"the window rendered nothing in {WINDOW_DEADLINE_S:.0f} s")
        app.processEvents()
        shot = win.grab()
        if shot.isNull() or shot.width() < 100:
            raise CheckFailed("the window's screenshot is empty")
        if screenshot and not shot.save(screenshot):
            raise CheckFailed(f"could not write the screenshot {screenshot}")
        return f"main window {shot.width()}x{shot.height()}" + (f", screenshot {screenshot}" if screenshot else "")
    finally:
        win.close()
        QCoreApplication.processEvents()


def check_model() -> str:
    from sarlang_core.errors import SarlangError
    from sarlang_core.resources import sample_scene_path
    from sarlang_core.services import SceneSession
    from sarlang_core.services.ask import AskRequest, Conversation, ask_scene
    from sarlang_core.services.models import GenerationConfig, open_backend, registered_models

    try:
        names = registered_models()
    except SarlangError as exc:
        raise CheckFailed(f"the model registry cannot be read: {exc}") from exc
    if not names:
        return "skipped: no model registered"
    name = names[0][1]
    request = AskRequest(QUESTION, config=GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))
    try:
        backend = open_backend(name)
        session = SceneSession.open(sample_scene_path())
        try:
            conv = Conversation(str(session.scene.path), request.pipeline)
            answer = "".join(ask_scene(backend, session, conv, request))
        finally:
            session.close()
            backend.unload()
    except SarlangError as exc:
        raise CheckFailed(f"model {name!r} could not answer: {exc}") from exc
    return f"model {name!r} answered {answer.strip()[:60]!r}"


def _checks(screenshot: Optional[str], make_app: Callable[[], Any]) -> List[tuple]:
    return [("sample", check_sample), ("window", lambda: check_window(screenshot, make_app)),
            ("model", check_model)]


def run_self_test(make_app: Callable[[], Any], screenshot: Optional[str] = None, out: TextIO = sys.stdout,
                  checks: Optional[List[tuple]] = None) -> int:
    """Run every check in order, stop at the first failure; 0 when all pass, 1 otherwise.
    ``make_app``: app.main's QApplication factory (styled, with the UI-thread collector)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")   # before Qt starts: no display needed
    if screenshot:
        Path(screenshot).expanduser().parent.mkdir(parents=True, exist_ok=True)
    for name, fn in (checks or _checks(screenshot, make_app)):
        try:
            detail = _timed(fn)
        except CheckFailed as exc:
            return _fail(out, name, str(exc))
        except Exception as exc:    # an install problem (a missing library, a file) is what we look for
            return _fail(out, name, f"{type(exc).__name__}: {exc}")
        print(f"ok   {name}: {detail}", file=out, flush=True)
    print("self-test passed", file=out, flush=True)
    return 0


def _timed(fn: Callable[[], str]) -> str:
    t0 = time.monotonic()
    detail = fn()
    return f"{detail} ({time.monotonic() - t0:.1f} s)"


def _fail(out: TextIO, name: str, reason: str) -> int:
    print(f"FAIL {name}: {reason}", file=out, flush=True)
    print(f"self-test failed: {name}: {reason}", file=out, flush=True)
    return 1
