"""The one shape of long work: ``fn(spec, *, progress=None, cancel=None)``."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Optional

from .errors import CancelledError


@dataclass(frozen=True)
class Progress:
    stage: str
    done: int
    total: int
    message: str = ""

    @property
    def fraction(self) -> float:
        return 0.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Thread-safe cancellation flag polled by long-running work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise CancelledError()


def report(progress: Optional[ProgressCallback], stage: str, done: int, total: int, message: str = "") -> None:
    """Send a Progress to ``progress`` if one was given."""
    if progress is not None:
        progress(Progress(stage, done, total, message))


def check(cancel: Optional[CancelToken]) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
