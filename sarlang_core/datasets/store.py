"""The curation store of a dataset project: one SQLite file (WAL) per project.

Tables: images, boxes, items (type, question, answer, source, status, JSON meta), flags (QC codes),
history (every status change and edit: reviewer, ISO time, before/after as JSON, change-set id),
meta (project settings as JSON). Every write is one ``BEGIN IMMEDIATE ... COMMIT`` transaction,
rolled back on any error, so killing the app at any moment loses no committed review and leaves
no half-written batch. The schema version lives in ``PRAGMA user_version``, the file kind in
``PRAGMA application_id``. The review writes (status, edits, history/undo, QC flags) live in
``store_review`` (mixed into ``Store``), whole imports and template generation (one transaction
each) in ``store_import``, the review cursor in ``review_queue``.

    with Store.open("project.sarlang", create=True) as store:
        store.add_images(images); store.add_boxes(boxes); store.add_items(items)
        q = store.queue(status="pending")
        item = q.next(); store.set_status(item.id, "accepted", reviewer="ana"); store.undo()
"""

from __future__ import annotations

import json
import sqlite3
import threading
from array import array
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from .records import ITEM_TYPES, SOURCES, STATUSES, BoxRecord, ImageRecord, Item
from .review_queue import ReviewQueue
from .store_answers import AnswerQueriesMixin
from .store_common import StoreError, _check, _item, _values, insert_items, item_row
from .store_import import ImportMixin
from .store_review import ReviewMixin

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "ReviewQueue", "Store", "StoreError"]

SCHEMA_VERSION = 1
APPLICATION_ID = 0x53524C44  # "SRLD": tells a dataset store from any other SQLite file
_MAGIC = b"SQLite format 3\x00"
_ITEM_COLS = "id, image_id, type, question, answer, source, status, meta"

_SCHEMA = """
CREATE TABLE images (id TEXT PRIMARY KEY, path TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    optical_path TEXT, split TEXT, source TEXT NOT NULL DEFAULT '');
CREATE TABLE boxes (id INTEGER PRIMARY KEY, image_id TEXT NOT NULL, category TEXT NOT NULL,
    x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL, annotation_id TEXT);
CREATE TABLE items (id INTEGER PRIMARY KEY, image_id TEXT NOT NULL, type TEXT NOT NULL, question TEXT NOT NULL,
    answer TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, meta TEXT);
CREATE TABLE flags (item_id INTEGER NOT NULL, code TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');
CREATE TABLE history (id INTEGER PRIMARY KEY, change_set INTEGER NOT NULL, item_id INTEGER NOT NULL,
    time TEXT NOT NULL, reviewer TEXT NOT NULL, action TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX ix_boxes_image ON boxes(image_id);
CREATE INDEX ix_boxes_category ON boxes(category, image_id);
CREATE INDEX ix_items_status ON items(status);
CREATE INDEX ix_items_type ON items(type);
CREATE INDEX ix_items_image ON items(image_id);
CREATE INDEX ix_flags_item ON flags(item_id);
CREATE INDEX ix_flags_code ON flags(code, item_id);
CREATE INDEX ix_history_item ON history(item_id);
CREATE INDEX ix_history_set ON history(change_set)
"""


class Store(ReviewMixin, AnswerQueriesMixin, ImportMixin):
    """One open dataset project. Thread-safe (one connection behind a lock); use as a context manager."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path
        self._lock = threading.RLock()

    # ---------------------------------------------------------------- open / close
    @classmethod
    def create(cls, path) -> "Store":
        """A new, empty store at ``path``; StoreError if a non-empty file is already there."""
        p = Path(path)
        if p.exists() and (p.is_dir() or p.stat().st_size > 0):
            raise StoreError("already exists; open it instead of creating it", p)
        return cls.open(p, create=True)

    @classmethod
    def open(cls, path, create: bool = False) -> "Store":
        """Open the store at ``path`` (``create``: make a new one when nothing is there)."""
        p = Path(path)
        if p.is_dir():
            raise StoreError("is a folder, not a dataset store", p)
        new = not p.exists() or p.stat().st_size == 0
        if new and not create:
            raise StoreError("no dataset store here" if not p.exists() else "empty file, not a dataset store", p)
        if not new:
            try:
                with open(p, "rb") as f:
                    head = f.read(len(_MAGIC))
            except OSError as e:
                raise StoreError(f"cannot read ({e.strerror or e})", p) from e
            if head != _MAGIC:
                raise StoreError("not a SQLite database, so not a SARLANG dataset store", p)
        try:
            conn = sqlite3.connect(str(p), timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open ({e})", p) from e
        store = cls(conn, p)
        try:
            store._setup(new)
        except BaseException:
            conn.close()
            raise
        return store

    def _setup(self, new: bool) -> None:
        c = self._conn
        try:
            app = c.execute("PRAGMA application_id").fetchone()[0]
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if not new and app != APPLICATION_ID:
                raise StoreError("a SQLite database, but not a SARLANG dataset store", self.path)
            if version > SCHEMA_VERSION:
                raise StoreError(f"written by a newer SARLANG Studio (schema version {version}; this version "
                                 f"reads up to {SCHEMA_VERSION}); update SARLANG Studio to open it", self.path)
            c.execute("PRAGMA journal_mode=WAL")
            for pragma in ("synchronous=NORMAL", "temp_store=MEMORY", "cache_size=-65536",
                           "journal_size_limit=67108864", "foreign_keys=OFF"):
                c.execute(f"PRAGMA {pragma}")
            c.execute("CREATE TEMP TABLE IF NOT EXISTS _ids (id INTEGER PRIMARY KEY)")
            # word count of a text, for the answer-length statistics (answer_stats)
            c.create_function("sarlang_words", 1, lambda text: len(str(text or "").split()), deterministic=True)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"not a readable dataset store ({e})", self.path) from e
        if new:
            with self._tx() as c:
                for statement in _SCHEMA.split(";"):
                    c.execute(statement)
                c.execute(f"PRAGMA application_id={APPLICATION_ID}")
                c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _tx(self):
        """One write transaction: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error."""
        with self._lock:
            c = self._conn
            if c is None:
                raise StoreError("the store is closed", self.path)
            try:
                c.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"cannot start a write ({e})", self.path) from e
            try:
                yield c
                c.execute("COMMIT")
            except BaseException as e:
                if c.in_transaction:
                    c.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"write failed, nothing written ({e})", self.path) from e
                raise

    def _read(self, sql: str, params=()) -> list:
        with self._lock:
            if self._conn is None:
                raise StoreError("the store is closed", self.path)
            return self._conn.execute(sql, params).fetchall()

    def _batches(self, sql: str, rows: Iterable[tuple], batch: int) -> int:
        """executemany in one transaction per ``batch`` rows (rows are built outside the transaction)."""
        it, total = iter(rows), 0
        while True:
            chunk = list(islice(it, max(1, batch)))
            if not chunk:
                return total
            with self._tx() as c:
                c.executemany(sql, chunk)
            total += len(chunk)

    # ---------------------------------------------------------------- images and boxes
    def add_images(self, records: Iterable[ImageRecord], *, batch: int = 50_000) -> int:
        """Insert or update (by id) images; returns how many records were written."""
        rows = ((r.id, str(r.path), int(r.width), int(r.height), r.optical_path, r.split, r.source) for r in records)
        return self._batches(
            "INSERT INTO images (id, path, width, height, optical_path, split, source) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(id) DO UPDATE SET path=excluded.path, width=excluded.width, height=excluded.height, "
            "optical_path=excluded.optical_path, split=excluded.split, source=excluded.source", rows, batch)

    def add_boxes(self, records: Iterable[BoxRecord], *, batch: int = 100_000) -> int:
        """Append boxes; returns how many were written."""
        rows = ((r.image_id, r.category, *map(float, r.bbox), r.annotation_id) for r in records)
        return self._batches("INSERT INTO boxes (image_id, category, x, y, w, h, annotation_id) "
                             "VALUES (?,?,?,?,?,?,?)", rows, batch)

    def images(self, split: Optional[str] = None) -> Iterator[ImageRecord]:
        """All images (or those of one split) in id order, read page by page."""
        last = ""
        where = "" if split is None else " AND split = ?"
        while True:
            rows = self._read("SELECT id, path, width, height, optical_path, split, source FROM images "
                              f"WHERE id > ?{where} ORDER BY id LIMIT 10000",
                              (last,) if split is None else (last, split))
            for r in rows:
                yield ImageRecord(*r)
            if len(rows) < 10000:
                return
            last = rows[-1][0]

    def image(self, image_id: str) -> ImageRecord:
        rows = self._read("SELECT id, path, width, height, optical_path, split, source FROM images WHERE id = ?",
                          (image_id,))
        if not rows:
            raise StoreError(f"no image {image_id!r}", self.path)
        return ImageRecord(*rows[0])

    def boxes(self, image_id: str) -> List[BoxRecord]:
        rows = self._read("SELECT image_id, category, x, y, w, h, annotation_id FROM boxes WHERE image_id = ? "
                          "ORDER BY id", (image_id,))
        return [BoxRecord(r[0], r[1], (r[2], r[3], r[4], r[5]), r[6]) for r in rows]

    def set_split(self, image_ids: Iterable[str], split: Optional[str]) -> int:
        """Assign ``split`` ("train", "test" or None) to the given images; returns how many changed."""
        with self._tx() as c:
            return c.executemany("UPDATE images SET split = ? WHERE id = ?", ((split, i) for i in image_ids)).rowcount

    # ---------------------------------------------------------------- items
    def add_items(self, items: Iterable[Item], *, batch: int = 50_000) -> int:
        """Insert items, one transaction per ``batch``; the store assigns ``item.id`` (any given id is replaced)."""
        it, total = iter(items), 0
        while True:
            chunk = list(islice(it, max(1, batch)))
            if not chunk:
                return total
            rows = [item_row(item, total + k) for k, item in enumerate(chunk)]
            with self._tx() as c:
                insert_items(c, chunk, rows)
            total += len(chunk)

    def _where(self, status=None, type=None, flag=None, category=None, source=None,
               image_id=None) -> Tuple[str, List[Any]]:
        """SQL WHERE clause and parameters for the item filters (each a value or a list of values)."""
        clauses: List[str] = []
        params: List[Any] = []

        def add(expr: str, value, allowed=None, name=""):
            values = _values(value)
            if allowed:
                _check(name, values, allowed)
            clauses.append(expr.format(",".join("?" * len(values))))
            params.extend(values)

        if status is not None:
            add("status IN ({})", status, STATUSES, "status")
        if type is not None:
            add("type IN ({})", type, ITEM_TYPES, "item type")
        if source is not None:
            add("source IN ({})", source, SOURCES, "source")
        if image_id is not None:
            add("image_id IN ({})", image_id)
        if flag is True:
            clauses.append("id IN (SELECT item_id FROM flags)")
        elif flag is False:
            clauses.append("id NOT IN (SELECT item_id FROM flags)")
        elif flag is not None:
            add("id IN (SELECT item_id FROM flags WHERE code IN ({}))", flag)
        if category is not None:
            add("image_id IN (SELECT image_id FROM boxes WHERE category IN ({}))", category)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def items(self, *, status=None, type=None, flag=None, category=None, source=None, image_id=None,
              limit: Optional[int] = None, offset: int = 0) -> List[Item]:
        """Matching items in id order. ``flag``: a code, codes, or True (any flag); ``category``: items
        whose image has a box of that category. Each filter takes one value or a list; ``flag=False``:
        items without any flag."""
        where, params = self._where(status, type, flag, category, source, image_id)
        rows = self._read(f"SELECT {_ITEM_COLS} FROM items{where} ORDER BY id LIMIT ? OFFSET ?",
                          [*params, -1 if limit is None else int(limit), int(offset)])
        return [_item(r) for r in rows]

    def count_items(self, *, status=None, type=None, flag=None, category=None, source=None, image_id=None) -> int:
        where, params = self._where(status, type, flag, category, source, image_id)
        return self._read(f"SELECT COUNT(*) FROM items{where}", params)[0][0]

    def iter_items(self, *, page: int = 10_000, **filters) -> Iterator[Item]:
        """Like ``items(**filters)`` but streamed page by page (by id), for passes over big stores."""
        where, params = self._where(**filters)
        cond = f"{where} {'AND' if where else 'WHERE'} id > ?"
        last = 0
        while True:
            rows = self._read(f"SELECT {_ITEM_COLS} FROM items{cond} ORDER BY id LIMIT ?", [*params, last, int(page)])
            yield from (_item(r) for r in rows)
            if len(rows) < page:
                return
            last = rows[-1][0]

    def image_ids(self, **filters) -> List[str]:
        """Image ids in id order: all of them, or (given ``items`` filters) those with a matching item."""
        if not filters:
            return [r[0] for r in self._read("SELECT id FROM images ORDER BY id")]
        where, params = self._where(**filters)
        return [r[0] for r in self._read(f"SELECT DISTINCT image_id FROM items{where} ORDER BY image_id", params)]

    def item(self, item_id: int) -> Item:
        rows = self._read(f"SELECT {_ITEM_COLS} FROM items WHERE id = ?", (int(item_id),))
        if not rows:
            raise StoreError(f"no item {item_id}", self.path)
        return _item(rows[0])

    def queue(self, snapshot: Optional[Iterable[int]] = None, **filters) -> "ReviewQueue":
        """A review cursor over the ids of the items matching ``filters`` (see ``items``), in id order;
        ``snapshot``: those ids, already read (``matching_ids`` on another connection)."""
        self._where(**filters)  # validate now
        return ReviewQueue(self, filters, snapshot)

    def matching_ids(self, **filters) -> array:
        """The ids of the items matching ``filters``, in id order (a compact int64 array)."""
        where, params = self._where(**filters)
        return array("q", (r[0] for r in self._read(f"SELECT id FROM items{where} ORDER BY id", params)))

    # ---------------------------------------------------------------- stats and project settings
    def stats(self) -> Dict[str, Any]:
        def group(sql: str) -> Dict[str, int]:
            return {k: v for k, v in self._read(sql)}

        return {
            "images": self._read("SELECT COUNT(*) FROM images")[0][0],
            "boxes": self._read("SELECT COUNT(*) FROM boxes")[0][0],
            "items": self._read("SELECT COUNT(*) FROM items")[0][0],
            "items_per_type": group("SELECT type, COUNT(*) FROM items GROUP BY type"),
            "items_per_status": group("SELECT status, COUNT(*) FROM items GROUP BY status"),
            "items_per_source": group("SELECT source, COUNT(*) FROM items GROUP BY source"),
            "images_per_split": group("SELECT COALESCE(split, 'unassigned'), COUNT(*) FROM images GROUP BY 1"),
            "boxes_per_category": group("SELECT category, COUNT(*) FROM boxes GROUP BY category"),
            "flags_per_code": group("SELECT code, COUNT(*) FROM flags GROUP BY code"),
        }

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable project setting (the Pipeline JSON, seeds...)."""
        try:
            text = json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError) as e:
            raise StoreError(f"setting {key!r} is not JSON-serialisable ({e})") from e
        with self._tx() as c:
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, text))

    def meta(self) -> Dict[str, Any]:
        return {k: json.loads(v) for k, v in self._read("SELECT key, value FROM meta ORDER BY key")}
