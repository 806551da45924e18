"""Shared helpers for the benchmark scripts: timing medians, machine line, big test scenes."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{datetime.date.today()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"


def median_ms(fn, runs: int = 9, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def speckled(h: int, w: int, looks: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.gamma(looks, 1.0 / looks, (h, w)) * 0.1).astype(np.float32)


def big_scene(path: Path, size: int = 16384, overviews=(2, 4, 8, 16, 32, 64)) -> Path:
    """A size x size float32 tiled GeoTIFF with ``overviews`` (none: how most SAR products
    arrive), written strip by strip (low RAM)."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin

    if path.exists():
        return path
    tmp = path.with_suffix(".part.tif")
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", tiled=True,
                   blockxsize=256, blockysize=256, crs="EPSG:32631", transform=from_origin(500000, 5000000, 10, 10),
                   BIGTIFF="YES")
    with rasterio.open(tmp, "w", **profile) as dst:
        rng = np.random.default_rng(1)
        base = np.where(np.arange(size) < size // 2, 0.02, 0.2).astype(np.float32)
        for row in range(0, size, 1024):
            h = min(1024, size - row)
            block = rng.gamma(1.0, 1.0, (h, size)).astype(np.float32) * base[None, :]
            dst.write(block, 1, window=rasterio.windows.Window(0, row, size, h))
        if overviews:
            dst.build_overviews(list(overviews), Resampling.average)
    tmp.rename(path)
    return path


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
