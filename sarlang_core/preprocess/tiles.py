"""Tiled filtering with a halo, and a cache of filtered tiles.

A tile is read with ``filter_halo`` pixels of context on each side (NaN beyond the raster, which
the filters treat like nodata), filtered, and cropped, so a tiled result equals the whole-image
result exactly. Filtered tiles are cached by (level, band, filter recipe, tile), so panning over
them never refilters and a stretch change only re-stretches.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Hashable, Iterator, Optional, Tuple

import numpy as np

from ..io import Window
from ..progress import CancelToken, check
from .filters import apply_filter, filter_halo
from .pipeline import FilterSpec
from .radiometry import to_domain

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FilterKey:
    """Everything that determines a filtered tile's values (the stretch and dB do not)."""

    band: int
    complex_as: str
    quantity: str
    domain: str
    filter: FilterSpec


class TileCache:
    """Thread-safe LRU of arrays bounded by bytes."""

    def __init__(self, max_bytes: int = 768 * 2**20):
        self.max_bytes = max_bytes
        self._items: "OrderedDict[Hashable, np.ndarray]" = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Optional[np.ndarray]:
        with self._lock:
            arr = self._items.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: Hashable, arr: np.ndarray) -> None:
        arr.setflags(write=False)
        with self._lock:
            if key in self._items:
                return
            self._items[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes


def filter_block(scene, key: FilterKey, level: int, window: Window, device: str = "auto") -> np.ndarray:
    """Filter one block of a level: read it with its halo, convert, filter, crop."""
    spec = key.filter
    halo = filter_halo(spec.name, spec.effective_window)
    padded = Window(window.col_off - halo, window.row_off - halo, window.width + 2 * halo, window.height + 2 * halo)
    band = scene.read_padded(key.band, padded, level, complex_as=key.complex_as)
    band = to_domain(band, key.quantity, key.domain)
    if spec.name != "none":
        band = apply_filter(spec.name, band, window=spec.effective_window, looks=spec.looks,
                            damping=spec.damping, snap_exact=spec.snap_exact, device=device)
    return np.ascontiguousarray(band[halo:halo + window.height, halo:halo + window.width], dtype=np.float32)


def tile_grid(width: int, height: int, tile: int, window: Optional[Window] = None) -> Iterator[Tuple[int, int, Window]]:
    """(tile_row, tile_col, tile window) of the tiles of a width x height grid meeting ``window``."""
    if window is None:
        window = Window(0, 0, width, height)
    r0 = max(0, window.row_off) // tile
    c0 = max(0, window.col_off) // tile
    r1 = min(height, window.row_off + window.height)
    c1 = min(width, window.col_off + window.width)
    for tr in range(r0, (r1 + tile - 1) // tile):
        for tc in range(c0, (c1 + tile - 1) // tile):
            row, col = tr * tile, tc * tile
            yield tr, tc, Window(col, row, min(tile, width - col), min(tile, height - row))


class TiledFilter:
    """Serves filtered windows of a scene from cached tiles, filling misses in parallel."""

    def __init__(self, scene, *, tile: int = 512, cache: Optional[TileCache] = None, workers: int = 2,
                 device: str = "auto"):
        self.scene = scene
        self.tile = tile
        self.cache = cache if cache is not None else TileCache()
        self.device = device
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sarlang-tile")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit_block(self, key: FilterKey, level: int, window: Window) -> Future:
        """Filter ``window`` of ``level`` on this filter's pool, uncached (a streamed pass over the
        whole scene, where caching would only evict the tiles a view needs)."""
        return self._pool.submit(filter_block, self.scene, key, level, window, self.device)

    def _tile(self, key: FilterKey, level: int, tr: int, tc: int, win: Window) -> np.ndarray:
        ckey = (id(self.scene), level, key, tr, tc)
        arr = self.cache.get(ckey)
        if arr is None:
            arr = filter_block(self.scene, key, level, win, self.device)
            self.cache.put(ckey, arr)
        return arr

    def window(self, key: FilterKey, level: int, window: Window, cancel: Optional[CancelToken] = None,
               on_tile: Optional[Callable[[], None]] = None) -> np.ndarray:
        """The filtered values of ``window`` (in the level's pixel grid), NaN outside the raster."""
        lv = self.scene.levels[level]
        out = np.full((window.height, window.width), np.nan, dtype=np.float32)
        tiles = list(tile_grid(lv.width, lv.height, self.tile, window))

        def job(item):
            check(cancel)
            tr, tc, win = item
            arr = self._tile(key, level, tr, tc, win)
            if on_tile is not None:
                on_tile()
            return win, arr

        futures = [self._pool.submit(job, t) for t in tiles]
        try:
            for fut in futures:
                win, arr = fut.result()
                _paste(out, window, win, arr)
        finally:
            settle(futures)  # no tile job may outlive the call: the scene may be closed next
        check(cancel)
        return out



def settle(futures) -> None:
    """Cancel what has not started and wait for what has (their errors are the caller's no more)."""
    for fut in futures:
        fut.cancel()
    for fut in futures:
        if not fut.cancelled():
            try:
                fut.result()
            except BaseException:
                log.debug("a settled tile job failed", exc_info=True)


def _paste(out: np.ndarray, dst: Window, src: Window, arr: np.ndarray) -> None:
    """Copy the part of ``arr`` (covering ``src``) that falls inside ``dst`` into ``out``."""
    r0 = max(dst.row_off, src.row_off)
    c0 = max(dst.col_off, src.col_off)
    r1 = min(dst.row_off + dst.height, src.row_off + src.height)
    c1 = min(dst.col_off + dst.width, src.col_off + src.width)
    if r1 <= r0 or c1 <= c0:
        return
    out[r0 - dst.row_off:r1 - dst.row_off, c0 - dst.col_off:c1 - dst.col_off] = \
        arr[r0 - src.row_off:r1 - src.row_off, c0 - src.col_off:c1 - src.col_off]


def iter_blocks(width: int, height: int, rows: int) -> Iterator[Window]:
    """Full-width strips of ``rows`` rows: the streaming order of whole-scene processing."""
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))
