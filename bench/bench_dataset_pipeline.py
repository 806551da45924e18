"""End to end: template generation streamed into the curation store, SARDet-100K-sized.

105,000 images and ~600,000 boxes (synthetic, SARDet-like) -> ~945,000 template items inserted
into a fresh SQLite store in batches. Target: <= 60 s on 2 cores, <= 2 GB RAM.
Run: .venv/bin/python bench/bench_dataset_pipeline.py [--images 105000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_dataset_templates import synthetic_set  # noqa: E402
from bench.common import machine  # noqa: E402
from sarlang_core.datasets.store import Store  # noqa: E402
from sarlang_core.datasets.templates import TemplateConfig, generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=105_000)
    args = ap.parse_args()
    print(machine())
    images, by_image, _ = synthetic_set(args.images)
    boxes = [b for bs in by_image.values() for b in bs]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        with Store.create(Path(d) / "project.db") as store:
            store.add_images(images)
            store.add_boxes(boxes)
            t1 = time.perf_counter()
            batch, n = [], 0
            for item in generate(images, by_image, TemplateConfig(seed=0)):
                batch.append(item)
                if len(batch) == 50_000:
                    n += store.add_items(batch)
                    batch = []
            n += store.add_items(batch)
        t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(images):,} images, {len(boxes):,} boxes stored in {t1 - t0:.1f} s; {n:,} template items generated "
          f"and inserted in {t2 - t1:.1f} s; total {t2 - t0:.1f} s (target <= 60 s); peak RSS {rss:.0f} MB "
          f"(target <= 2048 MB, includes the synthetic input)")


if __name__ == "__main__":
    main()
