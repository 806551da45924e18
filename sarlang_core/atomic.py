"""Files written whole or not at all: the data goes to a unique temporary file in the target's
folder, is flushed to disk, and is renamed over the target in one step, so a crash or a kill
leaves either the old file or the new one, never a half-written one (and no stray temp file)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Union

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError as exc:
            log.debug("cannot remove the temporary file %s: %s", tmp, exc)
        raise
    return path


def write_text_atomic(path: PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))
