"""Guards against Qt binding regressions that would take the whole app down."""

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    fired = Signal(object)


def test_emitting_signals_keeps_true_and_false_alive(qapp):
    # PySide6 6.12.0 released a reference to the bool returned by emit() on every call; the app
    # emits thousands of signals, and the interpreter aborted (bool_dealloc) at exit.
    e = _Emitter()
    before = sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        e.fired.emit(None)
    after = sys.getrefcount(True), sys.getrefcount(False)
    assert after[0] - before[0] > -50 and after[1] - before[1] > -50, (before, after)
