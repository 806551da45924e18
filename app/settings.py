"""Persistent choices (window layout, pipeline, recent files) in an INI file.

``SARLANG_SETTINGS_DIR`` points it elsewhere (tests use a temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def settings() -> QSettings:
    folder = os.environ.get("SARLANG_SETTINGS_DIR")
    if folder:
        return QSettings(str(Path(folder) / "sarlang-studio.ini"), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "SARLANG", "sarlang-studio")


def recent_files() -> List[str]:
    value = settings().value("recent", [])
    if isinstance(value, str):
        value = [value]
    return [v for v in (value or []) if v]


def add_recent(path: str) -> List[str]:
    items = [path] + [p for p in recent_files() if p != path]
    items = items[:MAX_RECENT]
    settings().setValue("recent", items)
    return items
