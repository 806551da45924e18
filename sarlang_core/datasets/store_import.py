"""Whole-import writes of a dataset store: one import (its images, boxes and items) and one template
generation are each one transaction, so a killed run leaves the store as it was.

A source (an annotation file or images folder, by its absolute path) is imported once: importing it
again raises :class:`StoreError` unless ``replace=True``, which first removes what that source
brought in (its items, its images with their boxes and the template items made from those boxes,
and their flags and history). Template generation skips images that already have template items,
so running it twice adds nothing.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List

from .records import BoxRecord, ImageRecord, Item
from .store_common import StoreError, _now, insert_items, item_row

IMPORTS_KEY = "imports"   # meta: {source path: {"kind", "time", "images", "boxes", "items"}}


class ImportMixin:
    """``import_records`` and ``add_template_items`` of ``Store``."""

    if TYPE_CHECKING:
        path: Path

        def _tx(self) -> AbstractContextManager: ...
        def _read(self, sql: str, params=()) -> list: ...

    def imported_sources(self) -> Dict[str, dict]:
        rows = self._read("SELECT value FROM meta WHERE key = ?", (IMPORTS_KEY,))
        return json.loads(rows[0][0]) if rows else {}

    def is_imported(self, source: str) -> bool:
        """Whether ``source`` already brought something into this project (also before imports were
        recorded: images or items that name it as their source)."""
        if source in self.imported_sources():
            return True
        return bool(self._read("SELECT 1 FROM images WHERE source = ? UNION ALL SELECT 1 FROM items "
                               "WHERE json_extract(meta, '$.file') = ? LIMIT 1", (source, source)))

    def import_records(self, source: str, images: Iterable[ImageRecord], boxes: Iterable[BoxRecord],
                       items: Iterable[Item], *, kind: str = "", replace: bool = False) -> Dict[str, int]:
        """Write one import in one transaction; returns counts (images, boxes, items, and with
        ``replace`` the removed ones). StoreError (nothing written) when ``source`` is already
        imported and ``replace`` is False."""
        items = list(items)
        rows = [item_row(it, k) for k, it in enumerate(items)]
        out: Dict[str, int] = {}
        with self._tx() as c:
            if self.is_imported(source):
                if not replace:
                    raise StoreError(f"{source} is already imported into this project; importing it again "
                                     f"would add its records twice. Replace it (--replace) to import it anew",
                                     self.path)
                out.update(_remove_source(c, source))
            out["images"] = c.executemany(
                "INSERT INTO images (id, path, width, height, optical_path, split, source) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET path=excluded.path, width=excluded.width, height=excluded.height, "
                "optical_path=COALESCE(excluded.optical_path, images.optical_path), "
                "source=CASE WHEN images.source = '' THEN excluded.source ELSE images.source END",
                ((r.id, str(r.path), int(r.width), int(r.height), r.optical_path, r.split, r.source)
                 for r in images)).rowcount
            out["boxes"] = c.executemany(
                "INSERT INTO boxes (image_id, category, x, y, w, h, annotation_id) VALUES (?,?,?,?,?,?,?)",
                ((r.image_id, r.category, *map(float, r.bbox), r.annotation_id) for r in boxes)).rowcount
            out["items"] = insert_items(c, items, rows)
            done = self.imported_sources()
            done[source] = {"kind": kind, "time": _now(), **{k: out[k] for k in ("images", "boxes", "items")}}
            c.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = "
                      "excluded.value", (IMPORTS_KEY, json.dumps(done, ensure_ascii=False)))
        return out

    def add_template_items(self, items: Iterable[Item], *, cancel=None) -> Dict[str, int]:
        """Add generated template items in one transaction, leaving out every image that already has
        template items and any repeated (image, question); returns {"items", "images skipped"}.
        ``cancel()`` is called every 10,000 items: raising from it rolls everything back."""
        with self._tx() as c:
            have = {r[0] for r in c.execute("SELECT DISTINCT image_id FROM items WHERE source = 'template'")}
            seen = set()
            batch: List[Item] = []
            skipped = set()
            added = 0
            for k, it in enumerate(items):
                if it.image_id in have:
                    skipped.add(it.image_id)
                    continue
                key = (it.image_id, it.question)
                if key in seen:
                    continue
                seen.add(key)
                batch.append(it)
                if len(batch) >= 10_000:
                    if cancel is not None:
                        cancel()
                    added += insert_items(c, batch, [item_row(b, k) for b in batch])
                    batch = []
            added += insert_items(c, batch, [item_row(b, 0) for b in batch])
        return {"items": added, "images skipped": len(skipped)}


def _remove_source(c, source: str) -> Dict[str, int]:
    """Remove what ``source`` brought in (inside the caller's transaction)."""
    c.execute("DELETE FROM _ids")
    c.execute("INSERT OR IGNORE INTO _ids (id) SELECT id FROM items WHERE json_extract(meta, '$.file') = ? "
              "OR (source = 'template' AND image_id IN (SELECT id FROM images WHERE source = ?))", (source, source))
    c.execute("DELETE FROM flags WHERE item_id IN (SELECT id FROM _ids)")
    c.execute("DELETE FROM history WHERE item_id IN (SELECT id FROM _ids)")
    items = c.execute("DELETE FROM items WHERE id IN (SELECT id FROM _ids)").rowcount
    c.execute("DELETE FROM _ids")
    boxes = c.execute("DELETE FROM boxes WHERE image_id IN (SELECT id FROM images WHERE source = ?)",
                      (source,)).rowcount
    images = c.execute("DELETE FROM images WHERE source = ? AND id NOT IN (SELECT image_id FROM items)",
                       (source,)).rowcount
    return {"removed images": images, "removed boxes": boxes, "removed items": items}
