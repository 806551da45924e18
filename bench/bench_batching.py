"""Benchmark generation with batches grouped by image size and prompt length, against consecutive
batches (the previous behaviour), in the same run, on the tiny Qwen2.5-VL (CPU) or a GPU model.

Run: .venv/bin/python bench/bench_batching.py [--samples 48] [--batch 4] [--runs 3] [--tokens 8]

Items: chips of mixed sizes (half 512², the rest 256², 384 x 512 and 1024²: a test set gathered
from several sources) with the paper's short VQA questions of mixed lengths, in shuffled order.
Both ways answer every item with the same greedy answers (checked); the figure is items/s, median
of ``--runs``, runs interleaved. "consecutive" is the same code with one batch per window and no
grouping, which is what benchmark runs did before.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import machine  # noqa: E402

from sarlang_core.evaluate import batch_fit, generation  # noqa: E402
from sarlang_core.evaluate.dataset_source import Sample  # noqa: E402
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig  # noqa: E402
from sarlang_core.vlm.local import LocalBackend  # noqa: E402
from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl  # noqa: E402

QUESTIONS = ["How many ships are there in the image?", "Is there a bridge?",
             "What is the main land cover type visible in this SAR image, and is it urban or rural?"]
SIZES = [(512, 512)] * 4 + [(256, 256), (384, 512), (1024, 1024), (256, 256)]


def items(n: int):
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    images = {i: (rng.random(SIZES[i % len(SIZES)][::-1]) * 255).astype(np.uint8) for i in range(n)}
    samples = [Sample(f"q{i}", f"/chips/{i}.png", QUESTIONS[i % 3], ("x",), "t") for i in order]
    return samples, lambda s: (images[int(s.id[1:])], [ChatTurn("user", s.question)])


def run(backend, samples, prepare, config, batch, grouped: bool):
    window, key = batch_fit.WINDOW, generation._shape_key
    if not grouped:
        batch_fit.WINDOW, generation._shape_key = 1, (lambda prepared: 0)
    try:
        t0 = time.perf_counter()
        answers = list(generation.answer_all(backend, samples, prepare, config, batch_size=batch))
        return len(answers) / (time.perf_counter() - t0), [(a.id, a.text) for a in answers]
    finally:
        batch_fit.WINDOW, generation._shape_key = window, key


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--model", help="a model folder (default: the tiny random Qwen2.5-VL)")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or build_tiny_qwen2_5_vl(Path(tmp) / "tiny")
        backend = LocalBackend(folder)
        backend.load()
        samples, prepare = items(args.samples)
        config = GenerationConfig(max_new_tokens=args.tokens)
        rates: dict = {"consecutive": [], "grouped": []}
        outputs = {}
        for _ in range(args.runs):
            for name in rates:
                rate, out = run(backend, samples, prepare, config, args.batch, name == "grouped")
                rates[name].append(rate)
                outputs[name] = out
    same = outputs["grouped"] == outputs["consecutive"]
    print(f"{args.samples} items, batch {args.batch}, {args.tokens} new tokens, {backend.device}; "
          f"same ids, order and answers: {same}")
    for name, r in rates.items():
        print(f"  {name:12} {statistics.median(r):7.2f} items/s")
    gain = statistics.median(rates["grouped"]) / statistics.median(rates["consecutive"])
    print(f"  grouped / consecutive: x{gain:.2f}")


if __name__ == "__main__":
    main()
