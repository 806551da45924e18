"""Event-loop stalls of the GUI while it opens a big scene, pans, zooms and drags sliders.

A 2 ms QTimer records the gap between its ticks; any gap well beyond 2 ms is time the UI
thread could not serve events. Run offscreen:
    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/bench_ui_stalls.py [--size 16384]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import big_scene, machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=16384)
    args = ap.parse_args()
    print(machine())
    path = big_scene(Path(tempfile.gettempdir()) / f"sarlang_bench_open_{args.size}.tif", args.size)
    os.environ.setdefault("SARLANG_SETTINGS_DIR", tempfile.mkdtemp())

    from PySide6.QtCore import QElapsedTimer, QRectF, QTimer

    from app import workers
    from app.main import make_app, warm_up_kernels
    from app.main_window import MainWindow

    app = make_app()
    warm_up_kernels()
    win = MainWindow()
    win.resize(1600, 1000)
    win.show()
    gaps = []
    clock = QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=2)
    timer.timeout.connect(tick)

    def pump(seconds: float):
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)

    pump(3.0)  # let the background warm-up finish (it compiles or loads the kernels)
    last[0] = clock.elapsed()
    timer.start()
    t0 = time.perf_counter()
    win.open_path(str(path))   # opens on the io lane; the render follows
    while win.renderer.last_proc is None and time.perf_counter() - t0 < 30:
        pump(0.01)
    first_screen = time.perf_counter() - t0
    pump(1.0)   # the first paint of the new scene belongs to opening, reported on its own
    phases = {"open + first paint": list(gaps)}

    def phase(name, steps):
        start = len(gaps)
        for step in steps:
            step()
            pump(0.03)
        pump(0.5)
        phases[name] = gaps[start:]

    vb = win.compare.active_view().vb
    size = args.size
    # zoom to ~1:1 in the middle, then pan right in 40 steps
    phase("zoom", [lambda s=s: vb.setRange(QRectF(size / 2 - s / 2, size / 2 - s / 3, s, s * 0.6), padding=0)
                   for s in (8000, 4000, 2000, 1200)])
    phase("pan", [lambda i=i: vb.setRange(QRectF(size / 2 - 600 + i * 60, size / 2 - 400, 1200, 720), padding=0)
                  for i in range(40)])
    panel = win.pipeline_panel
    phase("stretch slider", [lambda v=v: panel.low.setValue(v) for v in (1.0, 1.5, 2.5, 3.0, 4.0, 5.0, 2.0) * 3])
    phase("filter change", [lambda n=n: panel.filter.setCurrentIndex(panel.filter.findData(n))
                            for n in ("lee", "frost", "gamma-map", "median", "refined-lee")])
    timer.stop()
    workers.wait_all(10000)
    print(f"open {size}² + first screen: {first_screen * 1000:.0f} ms")
    for name, g in phases.items():
        g = sorted(g)
        p99 = g[int(0.99 * (len(g) - 1))] if g else 0
        print(f"{name:15s} ticks {len(g):5d}  median gap {statistics.median(g):5.1f} ms  p99 {p99:5.1f} ms  "
              f"max stall {max(g):5.1f} ms   target max <= 50 ms")
    win.close()
    app.processEvents()


if __name__ == "__main__":
    main()
