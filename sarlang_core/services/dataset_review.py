"""Reviewing a dataset project's items (the GUI's review window): the project-wide counts, the
queue of matching item ids, single decisions and edits with undo, bulk changes over a filter,
the flags and boxes shown with an item, and the project's Pipeline.

``matching_ids`` and ``project_counts`` open a connection of their own, so they can run on a
worker thread while the window keeps its ``ReviewProject`` for the quick per-item reads and writes.
Every change is one transaction in the store and lands in its history (``undo`` reverts it).

    project = ReviewProject.open("sardet.db")
    queue = project.queue(status="pending", type="counting")
    project.decide(queue.next(), "accepted", reviewer="ana")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..datasets.records import ITEM_TYPES, SARDET_CATEGORIES, STATUSES, Item
from .dataset_common import open_store, project_pipeline, render_path

__all__ = ["ITEM_TYPES", "SARDET_CATEGORIES", "STATUSES", "ReviewProject", "bulk_review", "matching_ids",
           "project_counts", "render_chip"]


def matching_ids(store_path, filters: Mapping[str, Any]) -> tuple:
    """(filters, ids of the items matching them, in id order), read on a connection of its own."""
    with open_store(store_path, create=False) as store:
        return dict(filters), store.matching_ids(**filters)


def project_counts(store_path) -> dict:
    """``Store.stats()`` plus "reviewed": the items whose status is no longer pending."""
    with open_store(store_path, create=False) as store:
        stats = store.stats()
    stats["reviewed"] = sum(n for status, n in stats.get("items_per_status", {}).items() if status != "pending")
    return stats


def bulk_review(store_path, filters: Mapping[str, Any], status: str, *, reviewer: str) -> tuple:
    """(how many items match ``filters``, how many of them changed) after setting ``status`` on
    every match in one transaction, undone as one step; what ``sarlang-cli dataset review`` runs."""
    with ReviewProject.open(store_path) as project:
        matched = project.count(filters)
        changed = project.bulk(filters, status, reviewer=reviewer) if matched else 0
    return matched, changed


def render_chip(path, pipeline):
    """A project image through the Pipeline, whole and at full resolution, as uint8."""
    return render_path(path, pipeline)


class ReviewProject:
    """One project open for review (one store connection, thread-safe); close it when done."""

    def __init__(self, store):
        self._store = store
        self.path = Path(store.path)
        self.root = self.path.resolve().parent
        self.pipeline = project_pipeline(store)

    @classmethod
    def open(cls, store_path) -> ReviewProject:
        return cls(open_store(store_path, create=False))

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> ReviewProject:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the project's Pipeline -----------------------------------------------------------------
    def set_pipeline(self, pipeline) -> None:
        """Record ``pipeline`` as the project's: the chips and the exported images go through it."""
        self._store.set_meta("pipeline", pipeline.to_dict())
        self.pipeline = pipeline

    # -- reading --------------------------------------------------------------------------------
    def queue(self, snapshot: Iterable[int] | None = None, **filters):
        """A review cursor over the items matching ``filters`` (``snapshot``: their ids, already
        read by ``matching_ids``)."""
        return self._store.queue(snapshot=snapshot, **filters)

    def count(self, filters: Mapping[str, Any]) -> int:
        return self._store.count_items(**filters)

    def item(self, item_id: int) -> Item:
        return self._store.item(item_id)

    def image(self, image_id: str):
        return self._store.image(image_id)

    def boxes(self, image_id: str) -> list:
        return self._store.boxes(image_id)

    def flags(self, item_id: int) -> list:
        """(code, message) of the quality-check flags on one item."""
        return self._store.flags(item_id)

    def history(self, item_id: int) -> list:
        return self._store.history(item_id)

    # -- changing -------------------------------------------------------------------------------
    def decide(self, item: Item, status: str, *, reviewer: str) -> int:
        """Set one item's status; returns how many more items are reviewed now (1 when a pending
        item got its first decision, else 0)."""
        changed = self._store.set_status(item.id, status, reviewer=reviewer)
        return int(changed and item.status == "pending")

    def edit(self, item: Item, *, question: str, answer: str, reviewer: str) -> int:
        """Change an item's question and answer (it becomes "edited"); returns as ``decide``."""
        changed = self._store.edit(item.id, question=question, answer=answer, reviewer=reviewer)
        return int(changed and item.status == "pending")

    def undo(self, *, reviewer: str | None = None) -> int | None:
        """Revert the latest change (of ``reviewer``): a decision, an edit or a whole bulk change.
        Returns the item id (the first of a bulk change), None when there is nothing to undo."""
        return self._store.undo(reviewer=reviewer)

    def bulk(self, filters: Mapping[str, Any], status: str, *, reviewer: str) -> int:
        """Set the status of every item matching ``filters`` in one transaction (undone as one
        step); returns how many items changed."""
        return self._store.bulk_set_status(dict(filters), status, reviewer=reviewer)
