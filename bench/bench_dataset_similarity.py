"""Speed of the exact dataset similarity (mean / variance of pairwise cosine) on random features.

    .venv/bin/python bench/bench_dataset_similarity.py [--n 100000] [--d 384] [--runs 3]

Target: 100,000 x 384 float32 in <= 5 s. Also checks the result against brute force on a
2,000-row subset.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from sarlang_core.datasets.similarity import cross_set_stats, pairwise_cosine_stats  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(args.n, args.d)) + 0.05).astype(np.float32)

    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        stats = pairwise_cosine_stats(x)
        times.append(time.perf_counter() - t0)
    print(f"pairwise_cosine_stats {args.n} x {args.d} float32: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f} s, {args.runs} runs) -> {stats}")
    half = args.n // 2
    t0 = time.perf_counter()
    cross = cross_set_stats(x[:half], x[half:])
    print(f"cross_set_stats {half} x {args.n - half}: {time.perf_counter() - t0:.2f} s -> {cross}")

    sub = x[:2000].astype(np.float64)
    u = sub / np.linalg.norm(sub, axis=1, keepdims=True)
    c = (u @ u.T)[np.triu_indices(len(sub), 1)]
    s = pairwise_cosine_stats(x[:2000])
    print(f"check vs brute force (2,000 rows): |d mean| {abs(s.mean - c.mean()):.1e}, "
          f"|d var| {abs(s.var - c.var()):.1e}")
    print("target <= 5 s:", "PASS" if statistics.median(times) <= 5 else "FAIL")


if __name__ == "__main__":
    main()
