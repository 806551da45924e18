"""Dataset projects: the shared records (images, boxes, items) and the SQLite curation store."""

from .records import ITEM_TYPES, SARDET_CATEGORIES, SOURCES, STATUSES, BoxRecord, ImageRecord, Item  # noqa: F401
from .store import ReviewQueue, Store, StoreError  # noqa: F401

__all__ = ["ITEM_TYPES", "SARDET_CATEGORIES", "SOURCES", "STATUSES", "BoxRecord", "ImageRecord", "Item",
           "ReviewQueue", "Store", "StoreError"]
