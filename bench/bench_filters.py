"""Speed of the speckle filters on a 1024 x 1024 float32 gamma-speckled image.

    .venv/bin/python bench/bench_filters.py [--size 1024] [--runs 9] [--no-torch]

Prints machine info and a table: median (and min) of >= 7 timed runs after one warm-up call,
in ms and MP/s, for every filter on the numba path, refined Lee in both modes, a plain float32
numpy refined Lee written here (a baseline and a second reference: its agreement with the numba
kernel is printed too), and the torch path on the CPU (and on CUDA when there is one).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sarlang_core.preprocess import filters as F  # noqa: E402
from sarlang_core.preprocess.filters.refined_lee_kernel import WINDOW_MASKS  # noqa: E402


# ----------------------------------------------------------------------------- numpy baseline
def numpy_refined_lee(band):
    """Refined Lee (REFINED_LEE.md, default mode) in plain vectorised float32 numpy.

    NaN marks invalid pixels; the image is NaN-padded by 3, and every statistic is a sum over
    shifted views of the whole image.
    """
    a = np.asarray(band, np.float32)
    h, w = a.shape
    xp = np.pad(a, 3, constant_values=np.nan)
    c = xp[3:-3, 3:-3]
    # 3 x 3 sub-area mean and var / mean^2 at padded positions 1 .. h + 4
    ph, pw = h + 4, w + 4
    cen = xp[1 : 1 + ph, 1 : 1 + pw]
    s0 = np.zeros((ph, pw), np.float32)
    s1 = np.zeros_like(s0)
    s2 = np.zeros_like(s0)
    for dr in range(3):
        for dc in range(3):
            p = xp[dr : dr + ph, dc : dc + pw]
            d = p - cen
            s0 += p
            s1 += d
            s2 += d * d
    mean = s0 / 9
    var = np.maximum((s2 - s1 * s1 / 9) / 8, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vnorm = np.where(mean > 0, var / (mean * mean), np.where(np.isnan(mean), np.nan, 0))
    m = np.stack([mean[2 * j : 2 * j + h, 2 * i : 2 * i + w] for j in range(3) for i in range(3)])
    v = np.stack([vnorm[2 * j : 2 * j + h, 2 * i : 2 * i + w] for j in range(3) for i in range(3)])
    complete = ~np.isnan(m).any(0)
    ia, ib = np.array([3, 2, 1, 0]), np.array([5, 6, 7, 8])  # sub-areas across each direction
    grads = np.abs(m[ia] - m[ib])
    direction = np.argmax(np.nan_to_num(grads, nan=-1), axis=0)  # first maximum wins
    av = np.take_along_axis(m[ia], direction[None], 0)[0]
    bv = np.take_along_axis(m[ib], direction[None], 0)[0]
    side_a = np.abs(av - m[4]) < np.abs(m[4] - bv)
    kind = np.where(side_a, np.array([0, 4, 2, 6])[direction], np.array([1, 5, 3, 7])[direction])
    # window membership per offset: a lookup by kind; kind 8 = incomplete = every valid pixel
    lut = np.vstack([(WINDOW_MASKS[:, None] >> np.arange(49)) & 1, np.ones((1, 49), np.int64)])
    lut = lut.astype(bool)
    kind8 = np.where(complete, kind, 8).astype(np.uint8)
    cnt_px = np.zeros((h, w), np.uint8)
    s1 = np.zeros((h, w), np.float32)
    s2 = np.zeros_like(s1)
    d = np.empty_like(s1)  # preallocated temporaries: fresh 4 MB arrays would cost page faults
    sel = np.empty((h, w), bool)
    tmp = np.empty((h, w), bool)
    for k in range(49):
        dr, dc = divmod(k, 7)
        np.subtract(xp[dr : dr + h, dc : dc + w], c, out=d)
        np.take(lut[:, k], kind8, out=sel)
        np.isnan(d, out=tmp)
        np.logical_not(tmp, out=tmp)
        np.logical_and(sel, tmp, out=sel)
        np.logical_not(sel, out=tmp)
        np.copyto(d, 0, where=tmp)
        np.add(cnt_px, sel, out=cnt_px, casting="unsafe")
        s1 += d
        np.multiply(d, d, out=d)
        s2 += d
    n = cnt_px.astype(np.float32)
    # 5 smallest complete sub-area V: a pruned 9-input sorting network, NaN (incomplete) = inf
    a = list(np.where(np.isnan(v), np.float32(np.inf), v))
    for i, j in ((0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (0, 3),
                 (3, 6), (1, 4), (4, 7), (1, 4), (5, 8), (2, 5), (2, 6), (4, 6)):
        a[i], a[j] = np.minimum(a[i], a[j]), np.maximum(a[i], a[j])
    cnt = np.minimum(sum((~np.isnan(x)).view(np.uint8) for x in v), 5)
    tot = sum(np.where(np.isfinite(x), x, np.float32(0)) for x in a[:5])  # infs = missing ones
    with np.errstate(divide="ignore", invalid="ignore"):
        sig = np.where(cnt > 0, tot / np.maximum(cnt, 1), 0)
        mean_y = c + s1 / n
        var_y = (s2 - s1 * s1 / n) / np.maximum(n - 1, 1)
        var_x = np.maximum((var_y - mean_y * mean_y * sig) / (1 + sig), 0)
        out = np.where(var_y > 0, mean_y + var_x / var_y * (c - mean_y), mean_y)
    out = np.where(n < 2, c, out)
    return np.where(np.isnan(c), c, out).astype(np.float32)


# ----------------------------------------------------------------------------- helpers
def scene(n, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:n, 0:n]
    refl = np.where(xx < n // 2, 1.0, 6.0) * np.where((yy // 128) % 2 == 0, 1.0, 0.3)
    return (refl * rng.gamma(1.0, 1.0, (n, n))).astype(np.float32)


def timed(fn, runs, sync=None):
    fn()  # warm-up (compiles / loads the cached kernels)
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        ts.append(time.perf_counter() - t)
    return np.median(ts), min(ts)


def uint8_agreement(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    db_a, db_b = (10 * np.log10(np.maximum(x[ok], 1e-6)) for x in (a, b))
    lo, hi = np.percentile(db_b, [2, 98])
    u8 = [np.clip(np.round((d - lo) / (hi - lo) * 255), 0, 255).astype(int) for d in (db_a, db_b)]
    return np.mean(np.abs(u8[0] - u8[1]) <= 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    runs = max(args.runs, 7)
    img = scene(args.size)
    mp = img.size / 1e6

    import numba

    print(f"date      {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"machine   {platform.platform()}; processor {platform.processor() or '?'}; "
          f"cpu_count {os.cpu_count()}; filter threads {F.POOL.threads}")
    print(f"versions  python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}")
    print(f"image     {img.shape[0]} x {img.shape[1]} float32, unit-mean gamma speckle (L = 1); "
          f"median of {runs} runs after a warm-up\n")
    rows = []

    def add(label, fn, sync=None):
        med, best = timed(fn, runs, sync)
        rows.append((label, med * 1e3, best * 1e3, mp / med))

    for name in F.FILTERS:
        add(f"{name} (numba)", lambda name=name: F.apply_filter(name, img, device="cpu"))
    add("refined-lee snap_exact (numba)", lambda: F.refined_lee(img, snap_exact=True))
    add("refined-lee numpy float32 baseline", lambda: numpy_refined_lee(img))
    agree = uint8_agreement(numpy_refined_lee(img), F.refined_lee(img))
    if not args.no_torch:
        import torch

        tag = f"torch-cpu, {torch.get_num_threads()} threads"
        for name in F.TORCH_FILTERS:
            add(f"{name} ({tag})", lambda name=name: F.apply_filter(name, img, device="torch-cpu"))
        if torch.cuda.is_available():
            for name in F.TORCH_FILTERS:
                add(f"{name} (cuda, incl. transfers)",
                    lambda name=name: F.apply_filter(name, img, device="cuda"), torch.cuda.synchronize)

    width = max(len(r[0]) for r in rows)
    print(f"{'filter (window 5 where it applies)':<{width}}  {'median ms':>9}  {'min ms':>8}  {'MP/s':>7}")
    for label, med, best, rate in rows:
        print(f"{label:<{width}}  {med:9.1f}  {best:8.1f}  {rate:7.1f}")
    print(f"\nnumpy baseline vs numba refined Lee: {100 * agree:.3f} % of pixels within 1 grey level "
          "(2-98 % dB stretch)")


if __name__ == "__main__":
    main()
