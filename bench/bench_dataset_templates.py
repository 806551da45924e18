"""Template VQA throughput on a synthetic SARDet-100K-sized set.

    .venv/bin/python bench/bench_dataset_templates.py [--images 105000] [--seed 0]

105,000 images (mostly 512 x 512, some 800 x 800 and 1000 x 600), ~600,000 boxes (1 to 3 classes
per image, clustered like ships in a harbour), then one full pass of ``templates.generate``.
Prints the machine line, the set-up time (not counted), generation time, items and items/image.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from sarlang_core.datasets.records import SARDET_CATEGORIES, BoxRecord, ImageRecord  # noqa: E402
from sarlang_core.datasets.templates import TemplateConfig, generate  # noqa: E402


def synthetic_set(n_images: int, seed: int = 0):
    rng = random.Random(seed)
    sizes = [(512, 512)] * 8 + [(800, 800), (1000, 600)]
    images, boxes_by_image, n_boxes = [], {}, 0
    for i in range(n_images):
        w, h = rng.choice(sizes)
        iid = f"train/{i:06d}.png"
        images.append(ImageRecord(iid, iid, w, h))
        boxes = []
        for cat in rng.sample(SARDET_CATEGORIES, rng.choice((1, 1, 1, 2, 2, 3))):
            cx, cy = rng.random() * w, rng.random() * h
            for _ in range(rng.randint(1, 6)):
                bw, bh = rng.uniform(8, 80), rng.uniform(8, 80)
                x = min(max(cx + rng.gauss(0, w / 8) - bw / 2, 0), w - bw)
                y = min(max(cy + rng.gauss(0, h / 8) - bh / 2, 0), h - bh)
                boxes.append(BoxRecord(iid, cat, (round(x, 2), round(y, 2), round(bw, 2), round(bh, 2))))
        boxes_by_image[iid] = boxes
        n_boxes += len(boxes)
    return images, boxes_by_image, n_boxes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=105_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(machine())
    t0 = time.perf_counter()
    images, boxes_by_image, n_boxes = synthetic_set(args.images, args.seed)
    print(f"set-up: {len(images):,} images, {n_boxes:,} boxes in {time.perf_counter() - t0:.1f} s (not timed)")
    t0 = time.perf_counter()
    types = Counter()
    n = 0
    for item in generate(images, boxes_by_image, TemplateConfig(seed=args.seed)):
        types[item.type] += 1
        n += 1
    dt = time.perf_counter() - t0
    print(f"generate: {n:,} items in {dt:.2f} s  ({n / dt:,.0f} items/s, {n / len(images):.2f} items/image)")
    print("by type: " + ", ".join(f"{t} {c:,}" for t, c in sorted(types.items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
