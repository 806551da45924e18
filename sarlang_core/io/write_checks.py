"""Making GDAL write failures visible.

rasterio raises when a block write fails at once, but GDAL flushes cached (compressed) blocks
and the TIFF directory on close, and rasterio's close only logs those failures ("GDAL signalled
an error" on the ``rasterio._env`` logger, at INFO): a full disk then leaves an unreadable file
and no error. :func:`gdal_failures` collects those records for the current thread, and
:func:`verify_geotiff` reopens a written file and reads every block back.
"""

from __future__ import annotations

import logging
import re
import threading
from contextlib import contextmanager
from typing import Iterator, List, Sequence

import numpy as np
import rasterio
from rasterio.windows import Window as RioWindow

from ..errors import ExportError

_LOGGER = "rasterio._env"
_MSG_RE = re.compile(r"msg='(.*)'\s*$|msg=\"(.*)\"\s*$")
_lock = threading.Lock()
_users = 0
_saved_level = logging.NOTSET


class WriteFailedError(ExportError):
    """GDAL reported a failed write (often a full disk) that rasterio did not raise."""


class Failures(logging.Handler):
    """GDAL errors (class Failure or Fatal) signalled in one thread while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        text = record.getMessage()
        if not text.startswith("GDAL signalled an error"):
            return
        m = _MSG_RE.search(text)
        self.messages.append(" ".join(((m.group(1) or m.group(2)) if m else text).split()))

    def raise_if_any(self, what: str) -> None:
        if self.messages:
            first = self.messages[0].rstrip(".")
            more = f" (and {len(self.messages) - 1} more GDAL errors)" if len(self.messages) > 1 else ""
            raise WriteFailedError(f"{what}: {first}{more}")


@contextmanager
def gdal_failures() -> Iterator[Failures]:
    global _users, _saved_level
    logger = logging.getLogger(_LOGGER)
    handler = Failures()
    with _lock:
        if _users == 0:
            _saved_level = logger.level
        _users += 1
        if not logger.isEnabledFor(logging.INFO):
            logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    try:
        yield handler
    finally:
        with _lock:
            logger.removeHandler(handler)
            _users -= 1
            if _users == 0:
                logger.setLevel(_saved_level)


def verify_geotiff(path, width: int, height: int, count: int, overviews: Sequence[int] = (),
                   base: bool = True) -> None:
    """Reopen ``path`` and decode every block of every band (``base``) and of the overviews;
    a truncated or damaged file raises (rasterio/GDAL errors, or ExportError)."""
    with rasterio.open(path) as ds:
        if (ds.width, ds.height, ds.count) != (width, height, count):
            raise ExportError(f"reads back as {ds.count} x {ds.height} x {ds.width}, "
                              f"not {count} x {height} x {width}")
        if overviews and ds.overviews(1) != [int(f) for f in overviews]:
            raise ExportError(f"overviews read back as {ds.overviews(1)}, not {list(overviews)}")
        pixel = np.dtype(ds.dtypes[0]).itemsize * count
        rows = max(256, (32 * 2**20) // max(1, width * pixel) // 256 * 256)  # whole tile rows, ~32 MB
        for r in range(0, height if base else 0, rows):
            ds.read(window=RioWindow(0, r, width, min(rows, height - r)))
        for f in overviews:
            ds.read(out_shape=(count, max(1, height // int(f)), max(1, width // int(f))))
