"""Curation store at SARDet scale: bulk insert, peak RSS and review-queue latency.

Synthesises 105,000 images, ~600,000 boxes and ~1,000,000 items (template VQA, captions and LLM
answers with realistic strings and JSON meta), inserts them into a fresh store, then times
``queue.next()`` (which fetches the item by id) over 1000 steps of a status-filtered queue.
Items are produced by a generator while add_items consumes them (peak RSS stays low); the time to
synthesise them alone is measured separately and subtracted.
Targets: total insert <= 60 s, peak RSS <= 2 GB, next item <= 50 ms.

Run: .venv/bin/python bench/bench_dataset_store.py [--images 105000] [--items 1000000] [--path /tmp/x.sarlang]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402

from sarlang_core.datasets import SARDET_CATEGORIES, BoxRecord, ImageRecord, Item, Store  # noqa: E402

PLACES = ("near the harbor", "in the upper left", "along the coast", "in the center", "at the bottom right",
          "next to the runway", "on the river", "beside the bridge")


def make_images(n: int, rng: random.Random):
    return [ImageRecord(f"train/{i:06d}.png", f"/data/sardet100k/JPEGImages/train/{i:06d}.png",
                        rng.choice((512, 800, 1024)), rng.choice((512, 800, 1024)),
                        source="sardet100k/train.json") for i in range(n)]


def make_boxes(images, per_image: float, rng: random.Random):
    out = []
    for img in images:
        for k in range(round(rng.uniform(1, 2 * per_image - 1))):
            out.append(BoxRecord(img.id, rng.choice(SARDET_CATEGORIES),
                                 (rng.uniform(0, 400), rng.uniform(0, 400), rng.uniform(4, 90), rng.uniform(4, 90)),
                                 f"{img.id}#{k}"))
    return out


def gen_items(images, n: int, seed: int):
    rng = random.Random(seed)
    per = n / len(images)
    made = 0
    for idx, img in enumerate(images):
        want = int((idx + 1) * per) - made
        for _ in range(want):
            cat = rng.choice(SARDET_CATEGORIES)
            kind = rng.random()
            if kind < 0.2:
                yield Item(img.id, "caption_detailed", "Describe this SAR image in detail.",
                           f"The SAR image shows {rng.randint(1, 12)} {cat}s {rng.choice(PLACES)}, with strong "
                           f"backscatter from the structures and dark, calm water {rng.choice(PLACES)}. "
                           f"Speckle is visible over the whole scene.", "llm",
                           {"model": "Qwen2.5-VL-7B", "prompt": "caption_v2", "cost": round(rng.random() / 1000, 6)})
            elif kind < 0.9:
                t = rng.choice(("counting", "identification", "classification", "positioning", "referring"))
                yield Item(img.id, t, f"How many {cat}s are there {rng.choice(PLACES)}?",
                           f"There are {rng.randint(0, 30)} {cat}s.", "template",
                           {"template": f"{t}_{rng.randint(1, 9)}"})
            else:
                yield Item(img.id, "general", f"What could the {cat} {rng.choice(PLACES)} be used for?",
                           f"It is probably used for {rng.choice(('transport', 'fishing', 'defence', 'storage'))}.",
                           "llm", {"model": "gpt-4o-mini"})
            made += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=105_000)
    ap.add_argument("--boxes-per-image", type=float, default=600_000 / 105_000)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--path", type=Path, default=None)
    args = ap.parse_args()
    rng = random.Random(0)
    images = make_images(args.images, rng)
    boxes = make_boxes(images, args.boxes_per_image, rng)
    t0 = time.perf_counter()
    synth = sum(1 for _ in gen_items(images, args.items, 1))
    t_synth = time.perf_counter() - t0

    tmp = None
    if args.path is None:
        tmp = tempfile.TemporaryDirectory(prefix="sarlang_bench_store_")
        args.path = Path(tmp.name) / "bench.sarlang"
    args.path.unlink(missing_ok=True)
    with Store.create(args.path) as store:
        t0 = time.perf_counter()
        n_img = store.add_images(images)
        t_img = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_box = store.add_boxes(boxes)
        t_box = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_item = store.add_items(gen_items(images, args.items, 1))
        t_items = time.perf_counter() - t0 - t_synth
        assert n_item == synth
        # a realistic review state: some items already reviewed
        store.bulk_set_status({"type": "general"}, "accepted", reviewer="bench")
        t0 = time.perf_counter()
        q = store.queue(status="pending")
        t_queue = time.perf_counter() - t0
        lat = []
        for _ in range(args.steps):
            s = time.perf_counter()
            item = q.next()
            lat.append((time.perf_counter() - s) * 1000)
            assert item is not None and item.status == "pending"
        t0 = time.perf_counter()
        stats = store.stats()
        t_stats = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_cat = store.count_items(category="bridge", status="pending")
        t_cat = time.perf_counter() - t0
    size = args.path.stat().st_size
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = t_img + t_box + t_items

    print(f"machine: {machine()}")
    print(f"store: {args.path} ({size / 2**20:.0f} MiB)")
    print(f"add_images  {n_img:>9,}  {t_img:6.2f} s")
    print(f"add_boxes   {n_box:>9,}  {t_box:6.2f} s")
    print(f"add_items   {n_item:>9,}  {t_items:6.2f} s   (synthesis alone {t_synth:.2f} s, subtracted)")
    print(f"total insert            {total:6.2f} s   target <= 60 s   {'OK' if total <= 60 else 'MISSED'}")
    print(f"peak RSS (whole process, incl. synthetic records) {rss_mb:,.0f} MiB   target <= 2048 MiB   "
          f"{'OK' if rss_mb <= 2048 else 'MISSED'}")
    print(f"queue(status='pending'): {q.total:,} ids loaded in {t_queue * 1000:.0f} ms")
    med, p99 = statistics.median(lat), sorted(lat)[int(0.99 * len(lat)) - 1]
    print(f"queue.next() + fetch over {args.steps} steps: median {med:.3f} ms, p99 {p99:.3f} ms, max {max(lat):.3f} ms"
          f"   target <= 50 ms   {'OK' if med <= 50 else 'MISSED'}")
    print(f"stats() {t_stats * 1000:.0f} ms; count_items(category='bridge', status='pending') = {n_cat:,} "
          f"in {t_cat * 1000:.0f} ms; items per status {stats['items_per_status']}")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
