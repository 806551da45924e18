"""Where overviews built for a user's file live: the per-user cache, never next to the file.

``$SARLANG_CACHE_DIR`` (if set) replaces ``platformdirs.user_cache_dir("sarlang-studio")``.
An entry is keyed by the file's absolute path, size and modification time, so an edited or
replaced file never picks up stale overviews.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "SARLANG_CACHE_DIR"
_KEY_VERSION = "ovr1"  # bump when the cache layout changes


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs
    return Path(platformdirs.user_cache_dir("sarlang-studio"))


def overview_dir() -> Path:
    return cache_root() / "overviews"


def cache_key(path: os.PathLike) -> str:
    p = Path(path).resolve()
    st = p.stat()
    ident = f"{_KEY_VERSION}|{p}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def cache_vrt_path(path: os.PathLike) -> Path:
    """The cache VRT for ``path`` (which may not exist yet)."""
    return overview_dir() / f"{cache_key(path)}.vrt"
