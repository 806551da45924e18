"""What the dataset store's modules share: the typed error and small helpers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable, Tuple

from ..errors import SarlangError
from .records import Item


class StoreError(SarlangError):
    """A dataset store cannot be opened or a read/write on it is invalid. Nothing was written."""

    def __init__(self, problem: str, path: object = None):
        self.path = None if path is None else str(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{self.path}: {problem}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _values(value) -> list:
    return [value] if isinstance(value, (str, int)) else list(value)


def _check(name: str, values: Iterable, allowed: Tuple[str, ...]) -> None:
    for v in values:
        if v not in allowed:
            raise StoreError(f"unknown {name} {v!r}; expected one of {', '.join(allowed)}")


def _item(row) -> Item:
    return Item(image_id=row[1], type=row[2], question=row[3], answer=row[4], source=row[5],
                meta=json.loads(row[7]) if row[7] else {}, id=row[0], status=row[6])
