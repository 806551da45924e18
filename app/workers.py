"""Run core work off the UI thread and bring results back as signals.

Lanes are separate thread pools: "io" serves tiles and previews, "jobs" runs long work
(overviews, exports, exact limits) so it never queues behind or in front of a live preview, and
"model" (one thread) loads models and generates, one request at a time.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from sarlang_core.errors import CancelledError, SarlangError

log = logging.getLogger(__name__)

_POOLS: dict[str, QThreadPool] = {}
# Python owns each task's signal object; keep it alive until its result has been delivered.
_LIVE: set = set()
_LANE_THREADS = {"io": 1, "jobs": 1, "model": 1}   # "model" serialises GPU/model work


_NICE = 10
_lowered = threading.local()


def lower_thread_priority() -> None:
    """Make the calling worker thread yield the CPU to the UI thread (Linux: per-thread nice).

    On a 2-core machine the filter kernels, GDAL reads and the UI thread compete for the cores;
    threads a worker starts (tile pools, numba's pool) inherit its niceness, so the UI thread
    keeps a responsive share however busy the workers are.
    """
    if getattr(_lowered, "done", False):
        return
    _lowered.done = True
    if hasattr(os, "setpriority") and hasattr(threading, "get_native_id"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _NICE)
        except OSError as exc:
            log.debug("cannot lower the worker thread's priority: %s", exc)


def pool(lane: str) -> QThreadPool:
    p = _POOLS.get(lane)
    if p is None:
        p = _POOLS[lane] = QThreadPool()
        p.setMaxThreadCount(_LANE_THREADS.get(lane, 1))
    return p


def wait_all(msecs: int = 10000) -> None:
    for p in _POOLS.values():
        p.waitForDone(msecs)


class TaskSignals(QObject):
    finished = Signal(object, object)      # (request id, result)
    failed = Signal(object, object)        # (request id, exception)
    progress = Signal(object, object)      # (request id, Progress)


class Task(QRunnable):
    """Calls ``fn(*args, **kwargs)`` on a pool thread; ``progress=`` is wired when ``wants_progress``."""

    def __init__(self, request_id: Any, fn: Callable, *args, wants_progress: bool = False, **kwargs):
        super().__init__()
        self.setAutoDelete(True)
        self.request_id = request_id
        self.signals = TaskSignals()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        if wants_progress:
            self._kwargs["progress"] = lambda p: self.signals.progress.emit(self.request_id, p)

    def run(self) -> None:
        lower_thread_priority()
        try:
            result = self._fn(*self._args, **self._kwargs)
        except BaseException as exc:  # delivered to the UI, which shows it; the app stays up
            exc.__traceback_text__ = trace = traceback.format_exc()
            _log_failure(self.request_id, self._fn, exc, trace)
            try:
                self.signals.failed.emit(self.request_id, exc)
            except RuntimeError:
                log.debug("task %r failed after its receiver was gone", self.request_id)
            return
        try:
            self.signals.finished.emit(self.request_id, result)
        except RuntimeError:
            log.debug("task %r finished after its receiver was gone", self.request_id)


def _log_failure(request_id: Any, fn: Callable, exc: BaseException, trace: str) -> None:
    """Cancelled work is routine; a typed error is shown to the user (logged as a warning);
    anything else is a bug (an error), each with its traceback. The traceback goes in as text:
    a record holding the exception would keep the task's frames (and the Qt objects they
    reference) alive in log handlers, to be freed later at an arbitrary point."""
    name = getattr(fn, "__qualname__", repr(fn))
    if isinstance(exc, CancelledError):
        log.debug("task %r (%s) cancelled", request_id, name)
    elif isinstance(exc, SarlangError):
        log.warning("task %r (%s) failed: %s\n%s", request_id, name, exc, trace)
    else:
        log.error("task %r (%s) failed\n%s", request_id, name, trace)


def submit(lane: str, request_id: Any, fn: Callable, *args, on_result: Callable | None = None,
           on_error: Callable | None = None, on_progress: Callable | None = None, **kwargs) -> Task:
    task = Task(request_id, fn, *args, wants_progress=on_progress is not None, **kwargs)
    signals = task.signals
    _LIVE.add(signals)
    release = lambda *_: _LIVE.discard(signals)  # noqa: E731
    signals.finished.connect(release)
    signals.failed.connect(release)
    if on_result is not None:
        task.signals.finished.connect(on_result)
    if on_error is not None:
        task.signals.failed.connect(on_error)
    if on_progress is not None:
        task.signals.progress.connect(on_progress)
    pool(lane).start(task)
    return task
