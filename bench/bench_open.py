"""Opening a big scene: open + the first screen, and a full-resolution 1024² window.

Writes (once; reused while it exists) a 16384 x 16384 float32 tiled GeoTIFF with internal
overviews 2..64, streamed window by window through ``write_geotiff_atomic`` (RAM stays low), then
times, over fresh ``open_scene`` calls: open + reading the level that fits a 1600 x 1000 view of
the whole scene, and a 1024 x 1024 read at full resolution. Target: open + first screen <= 1 s.

Run: .venv/bin/python bench/bench_open.py [--size 16384] [--runs 7] [--path /tmp/sarlang_bench_open_16384.tif]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402

from sarlang_core import synthetic as syn  # noqa: E402
from sarlang_core.errors import SceneError  # noqa: E402
from sarlang_core.io import Window, open_scene, write_geotiff_atomic  # noqa: E402

VIEW = (1600, 1000)


def make_scene(path: Path, size: int) -> Path:
    """Speckled synthetic reflectivity tiled over the scene, strip by strip (256 rows at a time)."""
    tile = syn.reflectivity_map(1024, 1024, seed=1)
    reps = -(-size // 1024)
    rng = np.random.default_rng(2)
    strip = 256

    def strips():
        for row in range(0, size, strip):
            r0 = row % 1024
            base = np.tile(tile[r0:r0 + strip], (1, reps))[:, :size]
            yield Window(0, row, size, strip), base * rng.gamma(2.0, 0.5, base.shape).astype(np.float32)

    factors = [f for f in (2, 4, 8, 16, 32, 64) if size // f >= 64]
    t0 = time.perf_counter()
    write_geotiff_atomic(path, strips(), width=size, height=size, count=1, dtype="float32",
                         crs=syn.DEFAULT_CRS, transform=syn.default_transform(), band_descriptions=("Sigma0_VV",),
                         tags={"quantity": "intensity"}, compress=None, overviews=factors, overwrite=True)
    print(f"wrote {path} ({path.stat().st_size / 2**30:.2f} GiB) in {time.perf_counter() - t0:.1f} s")
    return path


def usable(path: Path, size: int) -> bool:
    try:
        with open_scene(path) as s:
            return s.width == size and s.overview_source == "internal"
    except SceneError:
        return False


def evict(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def first_screen(path: Path):
    t0 = time.perf_counter()
    scene = open_scene(path)
    t_open = time.perf_counter() - t0
    level = scene.level_for_zoom(min(VIEW[0] / scene.width, VIEW[1] / scene.height))
    img = scene.read(0, None, level)
    t_total = time.perf_counter() - t0
    return scene, t_open, t_total, level, img.shape


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--path", type=Path, default=None)
    ap.add_argument("--build-overviews", type=int, default=0, metavar="N",
                    help="also time build_overviews (into a temp cache) of an N x N scene without overviews")
    args = ap.parse_args()
    path = args.path or Path(f"/tmp/sarlang_bench_open_{args.size}.tif")
    print(machine())
    import rasterio
    print(f"numpy {np.__version__} · rasterio {rasterio.__version__} · GDAL {rasterio.__gdal_version__}")
    if not usable(path, args.size):
        make_scene(path, args.size)

    opens, screens, windows, colds = [], [], [], []
    for _ in range(args.runs if hasattr(os, "posix_fadvise") else 0):
        evict(path)  # drop only this file from the OS page cache: a first open after boot
        scene, _, t_screen, _, _ = first_screen(path)
        colds.append(t_screen)
        scene.close()
    rng = np.random.default_rng(0)
    for _ in range(args.runs):
        scene, t_open, t_screen, level, shape = first_screen(path)
        c, r = (int(v) for v in rng.integers(0, args.size - 1024, 2))
        t0 = time.perf_counter()
        scene.read(0, Window(c, r, 1024, 1024), 0)
        windows.append(time.perf_counter() - t0)
        opens.append(t_open)
        screens.append(t_screen)
        scene.close()

    def fmt(ts):
        return f"median {statistics.median(ts) * 1000:7.1f} ms  (min {min(ts) * 1000:.1f}, max {max(ts) * 1000:.1f})"

    lv = open_scene(path).levels
    print(f"scene {args.size} x {args.size} float32, levels {[x.factor for x in lv]}; first screen = level "
          f"{level} (1:{lv[level].factor}, {shape[1]} x {shape[0]}) for a {VIEW[0]} x {VIEW[1]} view; "
          f"{args.runs} runs, "
          "fresh open_scene each")
    print(f"open_scene                   {fmt(opens)}")
    print(f"open + first screen          {fmt(screens)}   target <= 1000 ms")
    if colds:
        print(f"  same, file evicted first   {fmt(colds)}")
    print(f"1024² full-res window        {fmt(windows)}")
    if args.build_overviews:
        bench_build(args.build_overviews)


def bench_build(size: int) -> None:
    """Time the background job that makes a scene without overviews navigable."""
    import tempfile

    from sarlang_core.io import build_overviews

    with tempfile.TemporaryDirectory(prefix="sarlang_bench_") as tmp:
        os.environ["SARLANG_CACHE_DIR"] = str(Path(tmp) / "cache")
        path = Path(tmp) / f"plain_{size}.tif"
        rng = np.random.default_rng(3)
        write_geotiff_atomic(path, ((Window(0, r, size, min(256, size - r)),
                                     rng.gamma(1.0, 0.1, (min(256, size - r), size)).astype(np.float32))
                                    for r in range(0, size, 256)),
                             width=size, height=size, count=1, dtype="float32", crs=syn.DEFAULT_CRS,
                             transform=syn.default_transform(), compress=None)
        t0 = time.perf_counter()
        vrt = build_overviews(path)
        t = time.perf_counter() - t0
        with open_scene(path) as s:
            t1 = time.perf_counter()
            s.read(0, None, len(s.levels) - 1)
            levels = [lv.factor for lv in s.levels]
        size_mb = sum(p.stat().st_size for p in vrt.parent.iterdir()) / 2**20
        print(f"build_overviews {size} x {size} (cache, levels {levels[1:]}, {size_mb:.0f} MiB)  "
              f"{t:6.1f} s  ({size * size / t / 1e6:.0f} Mpx/s); "
              f"coarsest level read {1000 * (time.perf_counter() - t1):.1f} ms")


if __name__ == "__main__":
    main()
