"""Background tasks: a failure reaches the UI as the error signal and the log with its traceback."""

from __future__ import annotations

import logging

import pytest

from app import workers
from sarlang_core.errors import CancelledError, SarlangError


def broken_reader(path):
    raise ZeroDivisionError(f"bad arithmetic in {path}")


def cancelled_job():
    raise CancelledError("stopped by the user")


def refused_job():
    raise SarlangError("the file is empty (0 bytes)")


def run_failing(qtbot, fn, *args):
    got = []
    workers.submit("jobs", ("test", fn.__name__), fn, *args,
                   on_result=lambda rid, r: got.append(("result", rid, r)),
                   on_error=lambda rid, exc: got.append(("error", rid, exc)))
    qtbot.waitUntil(lambda: bool(got), timeout=10000)
    workers.wait_all(5000)
    return got


def test_a_failed_task_logs_its_traceback_and_signals_the_error(qtbot, caplog):
    caplog.set_level(logging.DEBUG, logger="app.workers")
    got = run_failing(qtbot, broken_reader, "scene.tif")
    [(kind, rid, exc)] = got
    assert kind == "error" and rid == ("test", "broken_reader")
    assert isinstance(exc, ZeroDivisionError) and "scene.tif" in str(exc)
    assert "broken_reader" in exc.__traceback_text__            # what the UI offers under "Details"
    [record] = [r for r in caplog.records if r.name == "app.workers"]
    assert record.levelno == logging.ERROR and "broken_reader" in record.getMessage()
    assert record.exc_info is None           # the traceback travels as text, holding no frames alive
    assert "Traceback (most recent call last)" in caplog.text
    assert "ZeroDivisionError: bad arithmetic in scene.tif" in caplog.text
    assert 'in broken_reader' in caplog.text                    # the frame where it went wrong


@pytest.mark.parametrize("fn, level", [(cancelled_job, logging.DEBUG), (refused_job, logging.WARNING)])
def test_cancelled_and_typed_failures_log_quieter(qtbot, caplog, fn, level):
    caplog.set_level(logging.DEBUG, logger="app.workers")
    [(kind, _rid, _exc)] = run_failing(qtbot, fn)
    assert kind == "error"
    [record] = [r for r in caplog.records if r.name == "app.workers"]
    assert record.levelno == level and fn.__name__ in record.getMessage()


def test_a_good_task_logs_nothing(qtbot, caplog):
    caplog.set_level(logging.DEBUG, logger="app.workers")
    got = []
    workers.submit("jobs", "ok", pow, 2, 10, on_result=lambda rid, r: got.append(r))
    qtbot.waitUntil(lambda: got == [1024], timeout=10000)
    assert [r for r in caplog.records if r.name == "app.workers"] == []


APP_LOG = r"""
import logging
from app.main import configure_logging
path = configure_logging()
assert configure_logging() is None                              # once per process
log = logging.getLogger("sarlang_core.somewhere")
log.warning("w-line"); log.info("i-line"); log.debug("d-line")
print(path)
"""


def test_the_app_logs_to_a_file_and_warnings_to_stderr(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, SARLANG_LOG_DIR=str(tmp_path / "logs"))
    out = subprocess.run([sys.executable, "-c", APP_LOG], capture_output=True, text=True, timeout=120, env=env,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr
    path = Path(out.stdout.strip())
    assert path == tmp_path / "logs" / "sarlang.log"
    text = path.read_text(encoding="utf-8")
    assert "WARNING" in text and "w-line" in text and "i-line" in text and "d-line" not in text
    assert "w-line" in out.stderr and "i-line" not in out.stderr
