"""The review panel's cursor over a dataset store (see ``Store.queue``)."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Dict, Iterable, Optional

from .records import Item

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store


class ReviewQueue:
    """The review panel's cursor: a snapshot of matching item ids (in id order) and a position in it;
    each step fetches one item by primary key. Starts before the first item (position -1). Items whose
    status changes stay in the snapshot until ``refresh()``."""

    def __init__(self, store: Store, filters: Dict[str, Any], snapshot: Optional[Iterable[int]] = None):
        self._store = store
        self._filters = dict(filters)
        self._ids = array("q")
        self._pos = -1
        if snapshot is None:
            self.refresh()
        else:   # ids read elsewhere (a worker thread with its own connection), in id order
            self._ids = array("q", snapshot)

    def refresh(self) -> None:
        """Re-read the matching ids, keeping the cursor on (or just before) the current item."""
        keep = self.current_id
        ids = self._store.matching_ids(**self._filters)
        self._ids = ids
        if keep is None:
            self._pos = -1
        else:
            k = bisect_left(ids, keep)
            self._pos = k if k < len(ids) and ids[k] == keep else k - 1

    def ids(self) -> array:
        """The ids in the queue (a copy), in id order."""
        return array("q", self._ids)

    @property
    def total(self) -> int:
        return len(self._ids)

    @property
    def position(self) -> int:
        return self._pos

    @property
    def current_id(self) -> Optional[int]:
        return self._ids[self._pos] if 0 <= self._pos < len(self._ids) else None

    def current(self) -> Optional[Item]:
        item_id = self.current_id
        return None if item_id is None else self._store.item(item_id)

    def next(self) -> Optional[Item]:
        """Move to and return the next item; None (cursor unchanged) at the end."""
        if self._pos + 1 >= len(self._ids):
            return None
        self._pos += 1
        return self.current()

    def previous(self) -> Optional[Item]:
        if self._pos <= 0:
            return None
        self._pos -= 1
        return self.current()

    def goto(self, item_id: int) -> Optional[Item]:
        """Jump to ``item_id`` if it is in the queue (else None, cursor unchanged)."""
        k = bisect_left(self._ids, int(item_id))
        if k < len(self._ids) and self._ids[k] == int(item_id):
            self._pos = k
            return self.current()
        return None

    def __len__(self) -> int:
        return len(self._ids)
