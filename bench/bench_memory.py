"""Peak memory of `sarlang-cli preprocess` on big float32 scenes, with and without overviews.

Run: .venv/bin/python bench/bench_memory.py [--sizes 8192 16384] [--runs 3] [--with-overviews] [--dir /tmp/x]
     [--code OLD_CHECKOUT]
Each run is a fresh process (its own peak RSS, VmHWM); prints the median per case. The scenes are
written into --dir and deleted at the end unless --keep (16k float32 is 1 GiB).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import big_scene, machine  # noqa: E402

# The child reports its own peak (VmHWM): a forked child's ru_maxrss starts at the parent's size.
CHILD = """
import sys
from sarlang_core.cli import main
try:
    code = main(sys.argv[1:])
finally:
    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
    print('PEAK_KB', hwm, file=sys.stderr)
sys.exit(code)
"""


def run_preprocess(scene: Path, out: Path, code: Path = ROOT) -> tuple:
    """(peak RSS MB, seconds) of one `sarlang-cli preprocess` process running the sarlang_core in
    ``code`` (``python -c`` puts its working folder first on the path)."""
    cmd = [sys.executable, "-c", CHILD, "preprocess", str(scene), str(out), "--overwrite", "--quiet"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=code)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"preprocess failed on {scene} (exit {proc.returncode}): {proc.stderr.strip()}")
    peak = [line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")]
    return int(peak[-1]) / 1024.0, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where to write the scenes (default: a temp folder)")
    ap.add_argument("--with-overviews", action="store_true", help="also time the same scenes with overviews")
    ap.add_argument("--keep", action="store_true", help="keep the scenes")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="a folder holding the sarlang_core to measure (e.g. an older checkout); default this one")
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="sarlang-bench-mem-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(machine())
    made = []
    try:
        for size in args.sizes:
            cases = [("no overviews", big_scene(folder / f"flat_{size}.tif", size, overviews=()))]
            made.append(cases[0][1])
            if args.with_overviews:
                cases.append(("overviews", big_scene(folder / f"ovr_{size}.tif", size)))
                made.append(cases[-1][1])
            for label, scene in cases:
                out = folder / f"out_{size}.tif"
                made.append(out)
                figures = [run_preprocess(scene, out, args.code) for _ in range(args.runs)]
                rss = statistics.median(f[0] for f in figures)
                sec = statistics.median(f[1] for f in figures)
                print(f"{size} x {size} float32, {label:12s}: peak RSS {rss:6.0f} MB (median of {args.runs}; "
                      f"runs {', '.join(f'{f[0]:.0f}' for f in figures)}), {sec:5.1f} s        target < 400 MB",
                      flush=True)
    finally:
        if not args.keep:
            for p in made:
                for q in (p, Path(f"{p}.ovr"), Path(f"{p}.aux.xml")):
                    q.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
