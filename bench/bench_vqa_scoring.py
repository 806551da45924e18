"""Judge-free VQA scoring on a SARLANG-1M-VQA-sized test set (125,255 items), both modes.

    .venv/bin/python bench/bench_vqa_scoring.py [--n 125255] [--runs 3]

Synthetic items in the paper's mix of types (identification, classification, counting,
referring, positioning, general), predictions right, near-miss or wordy. No judge: open answers
stay undecided. Prints the median of ``--runs`` passes of ``score_vqa`` per mode.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from sarlang_core.evaluate.vqa_metrics import VqaSample, score_vqa  # noqa: E402

CLASSES = ["ship", "aircraft", "car", "tank", "bridge", "harbor"]
PLACES = ["top left", "center", "bottom right", "upper part", "lower left", "middle"]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
# approximate shares of the paper's Table 4 VQA applications
MIX = [("identification", 45), ("classification", 12), ("counting", 11), ("referring", 20),
       ("positioning", 10), ("general", 2)]


def item(rng: random.Random, i: int) -> VqaSample:
    qtype = rng.choices([t for t, _ in MIX], [w for _, w in MIX])[0]
    if qtype == "identification":
        label = rng.choice(["yes", "no"])
        pred = rng.choice([label, "Yes, there is one.", "No.", f"{label.capitalize()}, I think."])
        q = f"Is there a {rng.choice(CLASSES)} in the image?"
    elif qtype == "counting":
        n = rng.randint(0, 30)
        label, q = str(n), f"How many {rng.choice(CLASSES)}s are there?"
        pred = rng.choice([str(n), str(n + rng.randint(1, 3)), f"There are {WORDS[min(n, 10)]}.", f"{n}0"])
    elif qtype in ("classification", "referring"):
        label = rng.choice(CLASSES)
        pred = rng.choice([label, f"a {label}", f"It is a {rng.choice(CLASSES)}.", "unknown"])
        q = "What is the object in the region?"
    elif qtype == "positioning":
        label = rng.choice(PLACES)
        pred = rng.choice([label, f"in the {rng.choice(PLACES)}", "The object is near the centre."])
        q = f"Where is the {rng.choice(CLASSES)}?"
    else:
        label = rng.choice(["oval", "rectangular", "farmland", "urban"])
        pred = rng.choice([label, "circular", "residential area", "square"])
        q = "What shape is the main building?"
    return VqaSample(str(i), q, label, pred, qtype)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=125_255)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    print(machine())
    rng = random.Random(0)
    samples = [item(rng, i) for i in range(args.n)]
    print(f"{len(samples):,} VQA items (no judge)")
    for mode in ("paper", "strict"):
        times, s = [], None
        for _ in range(args.runs):
            t0 = time.perf_counter()
            s = score_vqa(samples, mode=mode)
            times.append(time.perf_counter() - t0)
        print(f"{mode:>6}: median {statistics.median(times):.2f} s of {args.runs} "
              f"(accuracy {s.accuracy:.4f}, undecided {s.undecided:,}, counting MAE {s.counting_mae:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
