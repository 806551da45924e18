"""Python's cyclic garbage collector runs in whichever thread happens to allocate. Worker threads
allocate all the time (tiles, model outputs), so a reference cycle that holds a widget (a closed
window whose Python wrapper refers back to itself through a child) can be collected on a worker
thread: the widget, its children and their timers are then deleted outside the UI thread, which
corrupts Qt's timer lists and crashes the UI thread later, far from the cause.

``MainThreadGarbageCollector`` turns automatic collection off and collects from a timer on the UI
thread instead, by the same thresholds Python uses, so garbage is still collected as often.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

INTERVAL_MS = 500


class MainThreadGarbageCollector(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)
        gc.disable()

    def check(self) -> int:
        """Collect the oldest generation over its threshold, as the automatic collector would;
        returns the number of unreachable objects found."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                return gc.collect(generation)
        return 0

    def stop(self) -> None:
        """Hand collection back to Python (tests; the app keeps it until it exits)."""
        self.timer.stop()
        gc.enable()


def install(app: QObject) -> MainThreadGarbageCollector:
    """Once per QApplication: later calls return the collector already installed."""
    existing = app.findChild(MainThreadGarbageCollector)
    if existing is not None:
        return existing
    log.debug("garbage collection moves to the UI thread")
    return MainThreadGarbageCollector(app)
