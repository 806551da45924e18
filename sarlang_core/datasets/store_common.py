"""What the dataset store's modules share: the typed error and small helpers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable, List, Tuple

from ..errors import SarlangError
from .records import ITEM_TYPES, SOURCES, STATUSES, Item


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


def item_row(item: Item, k: int) -> tuple:
    """The items-table row of ``item`` (checked: type, source, status, JSON meta); ``k`` names it in errors."""
    if item.type not in ITEM_TYPES or item.source not in SOURCES or item.status not in STATUSES:
        _check("item type", [item.type], ITEM_TYPES)
        _check("item source", [item.source], SOURCES)
        _check("item status", [item.status], STATUSES)
    try:
        meta = json.dumps(item.meta, ensure_ascii=False, separators=(",", ":")) if item.meta else None
    except (TypeError, ValueError) as e:
        raise StoreError(f"item {k} (image {item.image_id!r}): meta is not JSON ({e})") from e
    return (item.image_id, item.type, item.question, item.answer, item.source, item.status, meta)


def insert_items(c, items: List[Item], rows: List[tuple]) -> int:
    """Insert ``rows`` (from item_row) inside the caller's transaction; the store assigns the ids."""
    if not rows:
        return 0
    first = c.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM items").fetchone()[0]
    c.executemany("INSERT INTO items (id, image_id, type, question, answer, source, status, meta) "
                  "VALUES (?,?,?,?,?,?,?,?)", ((first + k, *row) for k, row in enumerate(rows)))
    for k, item in enumerate(items):
        item.id = first + k
    return len(rows)
