"""Which of numba (CPU) and torch on CUDA filters faster *on this machine*, measured once and kept.

The crossing point depends on the GPU, the CPU and the copies between them (an H100 host's 16
cores beat its GPU on 1024² tiles once copies are counted; a 2-core box never does), so "auto"
decides by timing refined Lee on one 512² float32 tile both ways (a warm-up, then the median of
three), not by counting cores. The verdict is kept per machine in the user's cache folder,
keyed by the GPU, the core count and the torch and numba versions; a new driver or card measures
again. ``SARLANG_FILTER_DEVICE`` still overrides it (cuda.resolve_device).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Optional

log = logging.getLogger(__name__)

TILE = 512
RUNS = 3
_decided: Dict[str, str] = {}       # per process: key -> choice


def cache_file() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sarlang-studio")) / "filter_device.json"


def pick_fastest(candidates: Dict[str, Callable[[], object]], runs: int = RUNS) -> Dict[str, float]:
    """Median milliseconds of each candidate (one warm-up run first, not counted)."""
    timings: Dict[str, float] = {}
    for name, fn in candidates.items():
        fn()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        timings[name] = statistics.median(times)
    return timings


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def decide(key: str, candidates: Dict[str, Callable[[], object]], path: Optional[Path] = None) -> str:
    """The fastest candidate for ``key``: from this process, else the cache file, else measured
    now (and written to the cache; an unwritable cache only costs a measurement next time)."""
    if key in _decided:
        return _decided[key]
    path = path or cache_file()
    known = _read(path).get(key)
    if isinstance(known, dict) and known.get("choice") in candidates:
        _decided[key] = known["choice"]
        return _decided[key]
    timings = pick_fastest(candidates)
    choice = min(timings, key=lambda k: timings[k])
    log.info("filter device for %s: %s (%s)", key, choice, ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items()))
    data = _read(path)
    data[key] = {"choice": choice, "ms": timings, "tile": TILE, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                      time.gmtime())}
    try:
        from ...atomic import write_text_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(data, indent=1))
    except OSError as exc:
        log.warning("the filter device choice is not cached (%s)", exc)
    _decided[key] = choice
    return choice


def machine_key() -> str:
    import numba
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no-gpu"
    return f"{gpu}|{os.cpu_count()} cores|torch {torch.__version__}|numba {numba.__version__}"


def cuda_is_faster() -> bool:
    """Refined Lee on a 512² tile: torch on CUDA (copies included) against numba, measured once."""
    import numpy as np

    # The kernels directly, not dispatch.apply_filter: dispatch asks this module which device to use.
    from . import registry, torch_backend

    tile = np.random.default_rng(0).gamma(1.0, 0.1, (TILE, TILE)).astype(np.float32)
    numba_refined_lee = registry.get("refined-lee").numba_function()
    choice = decide(machine_key(), {
        "numba": lambda: numba_refined_lee(tile),
        "cuda": lambda: torch_backend.apply("refined-lee", tile, device="cuda"),
    })
    return choice == "cuda"
