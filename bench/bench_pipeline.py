"""The whole chain: a live 1024² viewport, a stretch-only change, and whole-scene throughput.

Run: .venv/bin/python bench/bench_pipeline.py [--size 16384] [--skip-scene] [--devices cpu,cuda]

``--devices`` exports the scene (no overviews) once per filter device (SARLANG_FILTER_DEVICE),
in the same run: the end-to-end GPU against numba figure, I/O included.
Prints medians; record them in BENCHMARKS.md with the machine line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import big_scene, machine, median_ms, peak_rss_mb, speckled  # noqa: E402

from sarlang_core.preprocess import Pipeline, StretchSpec, output_values, refined_lee, stretch_to_uint8  # noqa: E402
from sarlang_core.preprocess.filters import warmup  # noqa: E402


def viewport_chain(band: np.ndarray, lo: float, hi: float) -> np.ndarray:
    filtered = refined_lee(band)
    return stretch_to_uint8(output_values(filtered, "intensity", True, -50.0), lo, hi)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--skip-scene", action="store_true")
    ap.add_argument("--devices", default="", help="e.g. cpu,cuda: one export per filter device")
    args = ap.parse_args()
    print(machine())
    warmup()
    band = speckled(1024, 1024)
    lo, hi = -25.0, -5.0
    t_filter = median_ms(lambda: refined_lee(band))
    t_chain = median_ms(lambda: viewport_chain(band, lo, hi))
    filtered = refined_lee(band)
    t_restretch = median_ms(lambda: stretch_to_uint8(output_values(filtered, "intensity", True, -50.0), lo, hi))
    print(f"refined Lee 1024²            {t_filter:7.1f} ms  ({1.048576 / t_filter * 1000:5.1f} MP/s)   "
          "target <= 40 ms")
    print(f"filter + dB + stretch 1024²  {t_chain:7.1f} ms                       target <= 100 ms")
    print(f"re-stretch only (cached)     {t_restretch:7.1f} ms")

    if args.skip_scene:
        return
    from sarlang_core.services import SceneSession
    from sarlang_core.services.export import export_processed

    path = big_scene(Path(tempfile.gettempdir()) / f"sarlang_bench_open_{args.size}.tif", args.size)
    session = SceneSession.open(path)
    mp = args.size * args.size / 1e6
    rss0 = peak_rss_mb()
    for overviews in (False, True):
        with tempfile.TemporaryDirectory() as out_dir:
            t0 = time.perf_counter()
            export_processed(session, Pipeline(stretch=StretchSpec(2, 98)), Path(out_dir) / "out.tif",
                             overviews=overviews)
            dt = time.perf_counter() - t0
        what = "+ overviews" if overviews else "no overviews"
        print(f"whole scene {args.size}² refined Lee → dB → stretch → ZSTD GeoTIFF ({what}): {dt:6.1f} s  "
              f"({mp / dt:5.1f} MP/s)   target >= 20 MP/s")
    print(f"peak RSS {peak_rss_mb():.0f} MB (before the exports: {rss0:.0f} MB)                  target < 400 MB")
    for device in filter(None, args.devices.split(",")):
        os.environ["SARLANG_FILTER_DEVICE"] = device
        with tempfile.TemporaryDirectory() as out_dir:
            t0 = time.perf_counter()
            export_processed(session, Pipeline(stretch=StretchSpec(2, 98)), Path(out_dir) / "out.tif",
                             overviews=False)
            dt = time.perf_counter() - t0
        print(f"whole scene {args.size}², filters on {device:5s}: {dt:6.1f} s ({mp / dt:6.1f} MP/s)")
    session.close()


if __name__ == "__main__":
    main()
