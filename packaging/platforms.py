"""The one switch between operating systems: which installer maker packaging/build.py calls.

Each OS folder (packaging/linux, packaging/windows) has a module with
``make_installer(folder, version, variant, out_dir) -> Path``; nothing else in packaging/
knows about the OS.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sarlang_packaging_{path.parent.name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def installer_module(platform: str = sys.platform) -> ModuleType:
    if platform.startswith("linux"):
        return _load(HERE / "linux" / "archive.py")
    if platform.startswith("win"):
        return _load(HERE / "windows" / "installer.py")
    raise SystemExit(f"no installer for {platform} yet: add packaging/<os>/ with make_installer()")
