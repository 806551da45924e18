"""Benchmark runner overhead per sample, beyond the model call.

An in-process backend that answers instantly (it implements the VLMBackend protocol and does no
work) runs a VQA benchmark over N small PNG chips (as SARLANG-1M ships them, images as stored):
everything measured is the runner's own cost — reading the image, building the prompt, appending
and flushing the prediction line (fsync per batch), progress with ETA, resume bookkeeping.
Each repeat is a fresh run folder; the figure is the median over repeats of (generation time / N).
Scoring and reports are left out (they run once per run, not per sample).
Target: <= 5 ms per sample.

Run: .venv/bin/python bench/bench_runner_overhead.py [--samples 500] [--repeats 5] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402

from sarlang_core.evaluate.run_config import BackendSpec, DatasetSpec, RunConfig  # noqa: E402
from sarlang_core.evaluate.runner import BenchmarkRun  # noqa: E402


class InstantBackend:
    """A VLMBackend whose model call costs nothing: what remains is the runner's overhead."""

    loaded = True

    def load(self, *, progress=None, cancel=None) -> None:
        pass

    def stream(self, image, turns, config=None, *, cancel=None):
        yield "2"

    def unload(self) -> None:
        pass

    def identity(self):
        return {"backend": "instant", "model": "instant"}

    def model_input_size(self, width, height):
        return width, height


def make_dataset(folder: Path, n: int) -> Path:
    recs = []
    for i in range(n):
        name = f"chip{i}.png"
        Image.fromarray((np.random.default_rng(i).random((256, 256)) * 255).astype(np.uint8)).save(folder / name)
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": str(i % 5)}], "images": [name]})
    path = folder / "test.json"
    path.write_text(json.dumps(recs))
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = make_dataset(root, args.samples)
        per_sample, events = [], []
        for r in range(args.repeats + 1):          # the first repeat warms caches and imports
            cfg = RunConfig(name=f"r{r}", task="vqa", backend=BackendSpec(kind="local", model="instant"),
                            dataset=DatasetSpec(source=str(src)), concurrency=args.concurrency)
            run = BenchmarkRun.create(root / f"run{r}", cfg)
            events.clear()
            t0 = time.perf_counter()
            run.execute(progress=events.append, backend=InstantBackend(), score=False)
            elapsed = time.perf_counter() - t0
            assert run.status().done == args.samples
            if r:
                per_sample.append(elapsed / args.samples * 1000)
    print(machine())
    print(f"{args.samples} samples x {args.repeats} runs, concurrency {args.concurrency}, 256x256 PNG chips, "
          f"images as stored")
    print(f"runner overhead per sample: median {statistics.median(per_sample):.3f} ms "
          f"(runs: {', '.join(f'{v:.3f}' for v in per_sample)}); target <= 5 ms")


if __name__ == "__main__":
    main()
