"""Before the window opens: the system libraries Qt's X11 platform plugin needs.

Without them Qt aborts with "Could not load the Qt platform plugin "xcb"..." and a list of
plugins, which tells a user nothing about what to install. ``ldd`` on the plugin names exactly
the libraries the dynamic loader cannot find; Debian and Ubuntu name their packages after the
library (libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)


def not_found(ldd_output: str) -> List[str]:
    """The libraries ``ldd`` could not resolve, in order, once each."""
    return list(dict.fromkeys(_NOT_FOUND.findall(ldd_output)))


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package of a shared library by the distribution's naming rule."""
    m = re.match(r"^(lib.+?)\.so\.(\d+)", soname)
    if not m:
        return soname
    name, major = m.groups()
    package = f"{name}-{major}" if name[-1].isdigit() else f"{name}{major}"
    return package.lower()            # Debian package names are lower case: libGL.so.1 -> libgl1


def xcb_plugin_files() -> List[Path]:
    """Qt's X11 platform plugin and its X11 support library, where PySide6 keeps them."""
    try:
        import PySide6
    except ImportError:
        return []
    qt = Path(PySide6.__file__).resolve().parent / "Qt"
    return [p for p in (qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6") if p.is_file()]


def missing_libraries(files: Iterable[Path]) -> List[str]:
    """What the loader cannot find for ``files`` (empty when ldd is not there to ask)."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    missing: Dict[str, None] = {}
    for f in files:
        try:
            out = subprocess.run([ldd, str(f)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        missing.update(dict.fromkeys(not_found(out)))
    return list(missing)


def uses_x11(environ=os.environ) -> bool:
    """Whether Qt will open the window through X11 (Linux, an X display, no other platform asked for)."""
    platform = (environ.get("QT_QPA_PLATFORM") or "").split(":")[0]
    if not sys.platform.startswith("linux") or platform not in ("", "xcb"):
        return False
    return platform == "xcb" or (bool(environ.get("DISPLAY")) and not environ.get("WAYLAND_DISPLAY"))


def display_problem(environ=os.environ) -> Optional[str]:
    """One sentence naming the packages to install, or None when the window can open."""
    if not uses_x11(environ):
        return None
    missing = missing_libraries(xcb_plugin_files())
    if not missing:
        return None
    packages = " ".join(debian_package(s) for s in missing)
    return (f"SARLANG Studio cannot open its window: Qt's X11 support needs {', '.join(missing)}, which this "
            f"system lacks; install them (Debian/Ubuntu: sudo apt-get install {packages}) and start again, "
            f"or use sarlang-cli, which needs no display.")
