"""Append-only JSON-lines files that survive a kill at any moment.

Each record is one line, written and flushed as it arrives (``fsync`` on ``sync``). A process
killed mid-write leaves at most one torn last line (no newline, or not JSON); ``read_log`` reports
it and ``open_for_append`` cuts it off before appending, so every complete line ever written is
kept byte for byte.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, List, Optional, Union


@dataclass
class LogContents:
    records: List[dict] = field(default_factory=list)
    good_bytes: int = 0              # length of the prefix made of complete, valid lines
    torn: Optional[str] = None       # what was wrong with the tail, if anything
    bad_lines: List[int] = field(default_factory=list)   # 1-based complete lines that are not JSON objects


def read_log(path: Union[str, Path]) -> LogContents:
    """Every complete JSON-object line of ``path`` (none if it does not exist)."""
    out = LogContents()
    p = Path(path)
    if not p.exists():
        return out
    data = p.read_bytes()
    pos, number = 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        number += 1
        if end < 0:
            out.torn = f"line {number} has no end (the run was stopped while writing it)"
            break
        record = _parse(data[pos:end])
        if record is None and end + 1 >= len(data):
            out.torn = f"line {number} is not JSON (the run was stopped while writing it)"
            break
        if record is None:
            out.bad_lines.append(number)
        else:
            out.records.append(record)
        pos = end + 1
        out.good_bytes = pos
    return out


def _parse(line: bytes) -> Optional[dict]:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


class JsonlAppender:
    """Appends records to a JSON-lines file; use as a context manager."""

    def __init__(self, path: Union[str, Path], good_bytes: Optional[int] = None) -> None:
        self.path = Path(path)
        if good_bytes is not None and self.path.exists() and self.path.stat().st_size > good_bytes:
            with open(self.path, "r+b") as f:   # drop a torn tail left by a kill
                f.truncate(good_bytes)
        self._f: Optional[IO[bytes]] = open(self.path, "ab")

    def write(self, record: dict) -> None:
        if self._f is None:
            raise ValueError(f"{self.path}: write to a closed log")
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        self._f.write(line.encode("utf-8"))
        self._f.flush()

    def sync(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self.sync()
            self._f.close()
            self._f = None

    def __enter__(self) -> "JsonlAppender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_for_append(path: Union[str, Path]) -> "tuple[LogContents, JsonlAppender]":
    """Read what is there, cut off a torn tail, and return an appender positioned after it."""
    contents = read_log(path)
    return contents, JsonlAppender(path, contents.good_bytes)
