"""How the dataset dialogs show notes, warnings and errors: one palette and one wording of an
exception for every dialog in this room."""

from __future__ import annotations

from sarlang_core.errors import SarlangError

ERROR_STYLE = "color: #ff6b6b;"
WARN_STYLE = "color: #ffb000;"
NOTE_STYLE = "color: #7a828c; font-size: 9pt;"


def error_text(exc: BaseException) -> str:
    """A typed error as its message; anything else says it is a bug and where to look."""
    if isinstance(exc, SarlangError):
        return str(exc)
    return f"Unexpected {type(exc).__name__}: {exc} (this is a bug; please report it with the log)"
