"""Helpers shared by the GUI tests: waiting for renders, saving screenshots."""

from pathlib import Path

SHOTS = Path(__file__).resolve().parent / "screenshots"


def settle(qtbot, win, timeout=20000):
    """Wait until the views show a render for the current viewport and recipe."""
    from app import workers

    def done():
        workers.wait_all(100)
        assert win.renderer.last_proc is not None
        assert not win.renderer._timer.isActive()
        assert workers.pool("io").activeThreadCount() == 0

    qtbot.waitUntil(done, timeout=timeout)
    qtbot.wait(50)


def screenshot(win, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    win.grab().save(str(path))
    return path


def open_and_wait(qtbot, win, path, timeout=30000) -> None:
    """Open ``path`` and wait until the window has installed it."""
    with qtbot.waitSignal(win.sceneOpened, timeout=timeout):
        win.open_path(str(path))


def open_fails(qtbot, win, path, timeout=30000) -> str:
    """Open ``path``, expect failure, return the message the user was shown."""
    with qtbot.waitSignal(win.openFailed, timeout=timeout) as blocker:
        win.open_path(str(path))
    return blocker.args[1]
