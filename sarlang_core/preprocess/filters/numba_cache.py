"""Where numba keeps the compiled filter kernels.

numba picks a function's cache folder when a ``cache=True`` function is decorated, so
``configure()`` must run before the kernel modules are imported; they call it on their first
line. The package folder may be read-only (site-packages, a PyInstaller build), where numba would
not cache at all: the kernels go to the user's cache folder instead, unless the user chose one
with NUMBA_CACHE_DIR. Nothing here touches os.environ.
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def default_cache_dir() -> str:
    try:
        from platformdirs import user_cache_dir

        base = user_cache_dir("sarlang-studio")
    except ImportError:  # platformdirs is a dependency; keep working without it anyway
        base = os.path.join(os.path.expanduser("~"), ".cache", "sarlang-studio")
    return os.path.join(base, "numba")


def configure() -> str:
    """Point numba's cache at the user's cache folder (unless NUMBA_CACHE_DIR is set); returns
    the folder in use. Idempotent."""
    from numba.core import config

    cfg: Any = config  # its settings are set at run time, out of a type checker's sight
    if not os.environ.get("NUMBA_CACHE_DIR") and not cfg.CACHE_DIR:
        cfg.CACHE_DIR = default_cache_dir()
        log.debug("numba cache folder: %s", cfg.CACHE_DIR)
    return str(cfg.CACHE_DIR)
