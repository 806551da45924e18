"""Cyclic garbage (a closed window whose wrapper refers back to itself) is collected on the UI
thread, never by a worker thread that happens to allocate (app/gc_guard.py)."""

from __future__ import annotations

import gc
import threading

from app.gc_guard import MainThreadGarbageCollector


class Cycle:
    def __init__(self, seen: list):
        self.me = self
        self.seen = seen

    def __del__(self):
        self.seen.append(threading.current_thread().name)


def allocate_in_a_worker() -> None:
    """Enough container allocations to pass generation 0's threshold many times over."""
    def work():
        junk = []
        for _ in range(20 * gc.get_threshold()[0]):
            junk.append([])
        del junk

    t = threading.Thread(target=work, name="worker")
    t.start()
    t.join()


def test_collection_waits_for_the_ui_thread(qtbot, qapp):
    seen: list = []
    was_enabled = gc.isenabled()            # the session's own collector (conftest) has it off
    collector = MainThreadGarbageCollector(qapp, interval_ms=50)
    try:
        assert not gc.isenabled()
        Cycle(seen)                          # unreachable at once, but only the collector frees it
        allocate_in_a_worker()
        assert seen == []                    # the worker's allocations collected nothing
        live = [[] for _ in range(2 * gc.get_threshold()[0])]   # the UI thread allocates too
        qtbot.waitUntil(lambda: seen == ["MainThread"], timeout=5000)
        del live
        collector.stop()
        assert gc.isenabled()
    finally:
        collector.stop()
        collector.deleteLater()
        if not was_enabled:
            gc.disable()


def test_without_the_guard_a_worker_thread_collects(qapp):
    """What the guard prevents: Python's own collector runs in the allocating thread."""
    seen: list = []
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        gc.collect()
        Cycle(seen)
        allocate_in_a_worker()
        assert seen == ["worker"]
    finally:
        if not was_enabled:
            gc.disable()
