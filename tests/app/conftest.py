import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def garbage_on_the_ui_thread(qapp):
    """As in the app (app/gc_guard.py): cyclic garbage is collected on the UI thread only, never
    by a worker thread that happens to allocate while a closed window's cycle is pending."""
    from app.gc_guard import install

    collector = install(qapp)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def collect_after_each_test():
    """Windows a test closed are collected here, on the UI thread, before the next test starts."""
    import gc

    yield
    gc.collect()


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path, monkeypatch):
    """Each GUI test gets its own settings file and overview cache."""
    monkeypatch.setenv("SARLANG_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("SARLANG_CACHE_DIR", str(tmp_path / "cache"))

@pytest.fixture
def window(qtbot):
    from gui_helpers import show_styled

    from app import workers
    from app.main_window import MainWindow

    win = show_styled(qtbot, MainWindow, (1500, 900))
    yield win
    win.renderer.cancel()
    workers.wait_all(10000)



@pytest.fixture
def bench(qtbot, tmp_path):
    """The benchmark window on an empty runs folder; a run still going at the end is killed."""
    from gui_helpers import show_styled

    from app import workers
    from app.benchmarks.window import BenchmarkWindow

    win = show_styled(qtbot, lambda: BenchmarkWindow(runs_folder=str(tmp_path / "runs")), (1500, 900))
    yield win
    if win.process.running:
        win.process.proc.kill()
        win.process.proc.waitForFinished(5000)
    workers.wait_all(5000)


@pytest.fixture
def open_review(qtbot):
    """open_review(store_path) -> a shown ReviewWindow whose first queue is in place."""
    from gui_helpers import show_styled

    from app import workers
    from app.datasets.review_window import ReviewWindow

    def make(store_path):
        win = show_styled(qtbot, lambda: ReviewWindow(str(store_path), reviewer="tester"))
        qtbot.waitUntil(lambda: not win.queue_loading, timeout=10000)
        return win

    yield make
    workers.wait_all(10000)


@pytest.fixture
def server(monkeypatch):
    """The local chat-completions test server on 127.0.0.1 (no proxy, no key from the environment)."""
    from support.chat_server import serve

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with serve() as ep:
        yield ep
