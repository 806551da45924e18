import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHOTS = Path(__file__).resolve().parent / "screenshots"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Each GUI test gets its own settings file and overview cache."""
    monkeypatch.setenv("SARLANG_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("SARLANG_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def window(qtbot):
    from app import workers
    from app.main import apply_style
    from app.main_window import MainWindow

    apply_style(qtbot_app())
    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1500, 900)
    win.show()
    yield win
    win.renderer.cancel()
    workers.wait_all(10000)


def qtbot_app():
    from PySide6.QtWidgets import QApplication
    return QApplication.instance()


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
