"""The review writes of a dataset store: status changes, edits, bulk changes, the history with
undo, and QC flags. Mixed into ``Store`` (which provides ``_tx``, ``_read``, ``_where`` and ``path``);
every write is one transaction and every status change or edit lands in the history."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .records import STATUSES
from .store_common import StoreError, _check, _now, _values


class ReviewMixin:
    """Status, edits, history/undo and flags of ``Store``."""

    if TYPE_CHECKING:   # provided by Store
        path: Path

        def _read(self, sql: str, params=()) -> list: ...
        def _tx(self) -> AbstractContextManager: ...
        def _where(self, status=None, type=None, flag=None, category=None, source=None,
                   image_id=None) -> Tuple[str, List[Any]]: ...

    # ---------------------------------------------------------------- review: status, edits, history, undo
    def _record(self, c, change_set: int, item_id: int, reviewer: str, action: str, before: dict, after: dict):
        c.execute("INSERT INTO history (change_set, item_id, time, reviewer, action, before, after) "
                  "VALUES (?,?,?,?,?,?,?)", (change_set, item_id, _now(), reviewer, action,
                                             json.dumps(before, ensure_ascii=False),
                                             json.dumps(after, ensure_ascii=False)))

    @staticmethod
    def _next_set(c) -> int:
        return c.execute("SELECT COALESCE(MAX(change_set), 0) + 1 FROM history").fetchone()[0]

    def _current(self, c, item_id: int):
        row = c.execute("SELECT status, question, answer FROM items WHERE id = ?", (int(item_id),)).fetchone()
        if row is None:
            raise StoreError(f"no item {item_id}", self.path)
        return row

    @staticmethod
    def _reviewer(reviewer) -> str:
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise StoreError("a reviewer name is required")
        return reviewer

    def set_status(self, item_id: int, status: str, *, reviewer: str) -> bool:
        """Set one item's status (recorded in the history); False when it already had that status."""
        _check("status", [status], STATUSES)
        reviewer = self._reviewer(reviewer)
        with self._tx() as c:
            old = self._current(c, item_id)[0]
            if old == status:
                return False
            c.execute("UPDATE items SET status = ? WHERE id = ?", (status, int(item_id)))
            self._record(c, self._next_set(c), int(item_id), reviewer, "status", {"status": old}, {"status": status})
            return True

    def edit(self, item_id: int, *, question: Optional[str] = None, answer: Optional[str] = None,
             reviewer: str) -> bool:
        """Change the question and/or answer; the item becomes "edited". False when nothing changed."""
        reviewer = self._reviewer(reviewer)
        if question is None and answer is None:
            raise StoreError("nothing to edit: give a question and/or an answer")
        with self._tx() as c:
            status, q, a = self._current(c, item_id)
            new_q = q if question is None else question
            new_a = a if answer is None else answer
            if (new_q, new_a) == (q, a):
                return False
            c.execute("UPDATE items SET question = ?, answer = ?, status = 'edited' WHERE id = ?",
                      (new_q, new_a, int(item_id)))
            self._record(c, self._next_set(c), int(item_id), reviewer, "edit",
                         {"status": status, "question": q, "answer": a},
                         {"status": "edited", "question": new_q, "answer": new_a})
            return True

    def bulk_set_status(self, target: Union[Iterable[int], Mapping[str, Any]], status: str, *, reviewer: str) -> int:
        """Set the status of many items (``target``: item ids, or a dict of ``items`` filters) in one
        transaction, undoable as one step; returns how many items changed."""
        _check("status", [status], STATUSES)
        reviewer = self._reviewer(reviewer)
        if isinstance(target, Mapping):
            where, params = self._where(**target)
        with self._tx() as c:
            if not isinstance(target, Mapping):
                c.execute("DELETE FROM temp._ids")
                c.executemany("INSERT OR IGNORE INTO temp._ids (id) VALUES (?)", ((int(i),) for i in target))
                where, params = " WHERE id IN (SELECT id FROM temp._ids)", []
            cond = f"{where} {'AND' if where else 'WHERE'} status != ?"
            n = c.execute("INSERT INTO history (change_set, item_id, time, reviewer, action, before, after) "
                          "SELECT ?, id, ?, ?, 'bulk_status', json_object('status', status), json_object('status', ?) "
                          f"FROM items{cond} ORDER BY id",
                          [self._next_set(c), _now(), reviewer, status, *params, status]).rowcount
            c.execute(f"UPDATE items SET status = ?{cond}", [status, *params, status])
            return n

    def undo(self, *, reviewer: Optional[str] = None) -> Optional[int]:
        """Revert the most recent change not undone yet (of ``reviewer`` when given): a status change, an
        edit or a whole bulk change. Returns the item id (the first one of a bulk change), None if nothing."""
        with self._tx() as c:
            sql = "SELECT MAX(change_set) FROM history WHERE undone = 0"
            sql += "" if reviewer is None else " AND reviewer = ?"
            cs = c.execute(sql, () if reviewer is None else (reviewer,)).fetchone()[0]
            if cs is None:
                return None
            rows = c.execute("SELECT id, item_id, reviewer, before, after FROM history WHERE change_set = ? "
                             "ORDER BY id", (cs,)).fetchall()
            new_set, now = self._next_set(c), _now()
            for _hid, item_id, who, before, after in rows:
                fields = json.loads(before)
                c.execute(f"UPDATE items SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                          [*fields.values(), item_id])
                c.execute("INSERT INTO history (change_set, item_id, time, reviewer, action, before, after, undone) "
                          "VALUES (?,?,?,?,'undo',?,?,1)", (new_set, item_id, now, reviewer or who, after, before))
            c.execute("UPDATE history SET undone = 1 WHERE change_set = ?", (cs,))
            return rows[0][1]

    def history(self, item_id: int) -> List[Dict[str, Any]]:
        """The item's changes, oldest first: time (ISO, UTC), reviewer, action ("status", "edit",
        "bulk_status", "undo"), before and after (dicts), undone (bool)."""
        rows = self._read("SELECT time, reviewer, action, before, after, undone FROM history WHERE item_id = ? "
                          "ORDER BY id", (int(item_id),))
        return [dict(time=t, reviewer=r, action=a, before=json.loads(b), after=json.loads(af), undone=bool(u))
                for t, r, a, b, af, u in rows]

    # ---------------------------------------------------------------- flags
    def add_flags(self, flags: Iterable[Tuple[int, str, str]]) -> int:
        """Add (item_id, code, message) QC flags in one transaction; returns how many."""
        with self._tx() as c:
            return c.executemany("INSERT INTO flags (item_id, code, message) VALUES (?,?,?)",
                                 ((int(i), code, msg or "") for i, code, msg in flags)).rowcount

    def set_flags(self, flags: Mapping[int, Iterable[Tuple[str, str]]]) -> int:
        """Replace the flags of each item in ``flags`` (item id -> [(code, message)]); returns how many."""
        with self._tx() as c:
            n = 0
            for item_id, pairs in flags.items():
                c.execute("DELETE FROM flags WHERE item_id = ?", (int(item_id),))
                n += c.executemany("INSERT INTO flags (item_id, code, message) VALUES (?,?,?)",
                                   ((int(item_id), code, msg or "") for code, msg in pairs)).rowcount
            return n

    def flags(self, item_id: int) -> List[Tuple[str, str]]:
        return [tuple(r) for r in self._read("SELECT code, message FROM flags WHERE item_id = ? ORDER BY rowid",
                                             (int(item_id),))]

    def clear_flags(self, codes: Optional[Iterable[str]] = None) -> int:
        """Remove all flags, or those with the given codes; returns how many were removed."""
        with self._tx() as c:
            if codes is None:
                return c.execute("DELETE FROM flags").rowcount
            codes = _values(codes)
            return c.execute(f"DELETE FROM flags WHERE code IN ({','.join('?' * len(codes))})", codes).rowcount
