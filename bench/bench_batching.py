"""Benchmark generation with batches grouped by image size and prompt length, against consecutive
batches (the previous behaviour), in the same run, on the tiny Qwen2.5-VL (CPU) or a GPU model.

Run: .venv/bin/python bench/bench_batching.py [--samples 48] [--batch 4|auto] [--runs 3] [--tokens 8]
                                              [--model tiny|wide|3b] [--chips 512]

Items: chips of mixed sizes (half 512², the rest 256², 384 x 512 and 1024²: a test set gathered
from several sources), or with ``--chips 512`` all 512² as in SARLANG-1M-VQA, with the paper's
short VQA questions of mixed lengths, in shuffled order. Both ways answer every item with the same
greedy answers (checked); the figure is items/s, median of ``--runs``, runs interleaved.
"consecutive" is the same code with one batch per window and no grouping, which is what benchmark
runs did before. ``--batch auto`` sizes the batch as `bench run` does (measured on a GPU, 1 on
the CPU) and prints the size chosen; the projected times are for the paper's test sets (125,000
VQA items; 13,682 captions at the same rate, which holds only when ``--tokens`` is a caption's
length).
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
import torch  # noqa: E402
from bench_decoding import build  # noqa: E402
from common import machine  # noqa: E402

from sarlang_core.evaluate import batch_fit, generation  # noqa: E402
from sarlang_core.evaluate.dataset_source import Sample  # noqa: E402
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig  # noqa: E402
from sarlang_core.vlm.local import LocalBackend  # noqa: E402

VQA_ITEMS, CAPTION_ITEMS = 125_000, 13_682      # the paper's test sets

QUESTIONS = ["How many ships are there in the image?", "Is there a bridge?",
             "What is the main land cover type visible in this SAR image, and is it urban or rural?"]
SIZES = [(512, 512)] * 4 + [(256, 256), (384, 512), (1024, 1024), (256, 256)]


def items(n: int, chips: int = 0):
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    sizes = [(chips, chips)] if chips else SIZES
    images = {i: (rng.random(sizes[i % len(sizes)][::-1]) * 255).astype(np.uint8) for i in range(n)}
    samples = [Sample(f"q{i}", f"/chips/{i}.png", QUESTIONS[i % 3], ("x",), "t") for i in order]
    return samples, lambda s: (images[int(s.id[1:])], [ChatTurn("user", s.question)])


def run(backend, samples, prepare, config, batch, grouped: bool):
    window, key = batch_fit.WINDOW, generation._shape_key
    if not grouped:
        batch_fit.WINDOW, generation._shape_key = 1, (lambda prepared: 0)
    try:
        fit = batch_fit.BatchFit.for_backend(batch, backend)
        t0 = time.perf_counter()
        answers = list(generation.answer_all(backend, samples, prepare, config, batch_size=fit))
        return len(answers) / (time.perf_counter() - t0), [(a.id, a.text) for a in answers], fit.note
    finally:
        batch_fit.WINDOW, generation._shape_key = window, key


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--batch", type=batch_fit.parse_batch_size, default=4, help="1..256 or auto")
    ap.add_argument("--chips", type=int, default=0, help="all chips this size (default: mixed sizes)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--model", choices=("tiny", "wide", "3b"), default="tiny",
                    help="tiny test model, Qwen2.5-VL-3B widths with 2 layers, or the 3B architecture")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = build(args.model, args.device, Path(tmp))
        backend = LocalBackend.from_loaded(model, processor, family="qwen2_5_vl", name=args.model)
        samples, prepare = items(args.samples, args.chips)
        config = GenerationConfig(max_new_tokens=args.tokens)
        rates: dict = {"consecutive": [], "grouped": []}
        outputs, notes = {}, {}
        for _ in range(args.runs):
            for name in rates:
                rate, out, note = run(backend, samples, prepare, config, args.batch, name == "grouped")
                rates[name].append(rate)
                outputs[name] = out
                notes[name] = note
    same = outputs["grouped"] == outputs["consecutive"]
    print(f"{args.model} model, {args.samples} items, batch {notes['grouped']}, {args.tokens} new tokens, "
          f"{backend.device}; same ids, order and answers: {same}")
    for name, r in rates.items():
        print(f"  {name:12} {statistics.median(r):7.2f} items/s")
    gain = statistics.median(rates["grouped"]) / statistics.median(rates["consecutive"])
    print(f"  grouped / consecutive: x{gain:.2f}")
    rate = statistics.median(rates["grouped"])
    print(f"  projected: {VQA_ITEMS:,} VQA items in {VQA_ITEMS / rate / 3600:.2f} h, "
          f"{CAPTION_ITEMS:,} captions in {CAPTION_ITEMS / rate / 60:.1f} min (at this rate)")


if __name__ == "__main__":
    main()
