"""The answer-statistics reads of a dataset store (see ``answer_stats``). Mixed into ``Store``
(which provides ``_tx`` and ``_read``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

log = logging.getLogger(__name__)

CAPTIONS_SQL = "type NOT IN ('caption_concise', 'caption_detailed')"   # must match the partial index
ANSWER_INDEX_SQL = (f"CREATE INDEX IF NOT EXISTS ix_items_answer ON items(type, status, answer) "
                    f"WHERE {CAPTIONS_SQL}")


def _status_sql(statuses: Sequence[str]) -> str:
    # "+status": keeps SQLite on the covering answer index rather than the status index
    return f" AND +status IN ({','.join('?' * len(statuses))})" if statuses else ""


class AnswerQueriesMixin:
    """Grouped answer counts of ``Store``."""

    if TYPE_CHECKING:   # provided by Store
        def _read(self, sql: str, params=()) -> list: ...
        def _tx(self) -> AbstractContextManager: ...

    def answer_counts(self, types: Sequence[str], statuses: Sequence[str] = ()) -> list:
        """(type, answer, count) rows of the non-caption ``types``, grouped by type, status and
        answer (items of ``statuses`` only, when given)."""
        if not types:
            return []
        self.ensure_answer_index()
        return self._read(
            f"SELECT type, answer, COUNT(*) FROM items WHERE {CAPTIONS_SQL} AND type IN "
            f"({','.join('?' * len(types))}){_status_sql(statuses)} GROUP BY type, status, answer",
            [*types, *statuses])

    def answer_word_counts(self, types: Sequence[str], statuses: Sequence[str] = ()) -> list:
        """(type, words in the answer, count) rows of ``types`` (items of ``statuses`` only)."""
        if not types:
            return []
        return self._read(
            f"SELECT type, sarlang_words(answer), COUNT(*) FROM items WHERE type IN "
            f"({','.join('?' * len(types))}){_status_sql(statuses)} GROUP BY 1, 2", [*types, *statuses])

    def has_answer_index(self) -> bool:
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'ix_items_answer'"))

    def ensure_answer_index(self) -> bool:
        """Stores written before the answer index existed get it on first use (about a second per
        million items); a read-only store is still counted, just more slowly (SQL sorts instead).
        True when the index is there."""
        if self.has_answer_index():
            return True
        try:
            with self._tx() as c:
                c.execute(ANSWER_INDEX_SQL)
            return True
        except Exception as exc:   # read-only file or a busy writer: count without the index
            log.info("answer index not created (%s); counting without it", exc)
            return False
