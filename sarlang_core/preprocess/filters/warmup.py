"""Compile (or load from numba's disk cache) every filter kernel before it is first needed.

The GUI calls ``warmup()`` in a background thread at start-up, so the first live preview never
waits for the JIT; with ``cache=True`` a later start only loads the compiled kernels from the
cache folder (see ``numba_cache``).
"""

from __future__ import annotations

import numpy as np

from .cuda import cuda_available, resolve_device
from .dispatch import apply_filter
from .registry import FILTERS, TORCH_FILTERS


def warmup() -> None:
    """Run each kernel once on tiny float32 and float64 arrays (with a NaN, for the slow paths).
    Integer bands reuse the float32 kernels. Takes ~25 s on two cores the very first time,
    ~1-2 s (mostly importing torch for the CUDA check) once numba's cache is filled; on a machine
    whose filters run on CUDA, compiling the fused GPU filters adds to it (torch.compile: once per
    process, shortened by inductor's disk cache). Another window size compiles again when first
    used (the windows' offsets are unrolled into the kernels)."""
    for dtype in (np.float32, np.float64):
        tiny = np.linspace(1.0, 2.0, 12 * 11, dtype=dtype).reshape(12, 11)
        tiny[5, 5] = np.nan
        for name in FILTERS:
            apply_filter(name, tiny, window=3, nodata=-1.0, device="cpu")
        apply_filter("refined-lee", tiny, snap_exact=True, device="cpu")
        apply_filter("median", tiny, window=9, device="cpu")  # windows > 7: the sliding kernel
    # settle the "auto" device choice off the UI thread (numba against CUDA, measured once per
    # machine) and, when it is the GPU, compile the fused filters for the Pipeline's default window
    # before the first live tile (a cached choice measures nothing, so nothing compiled them yet)
    if cuda_available() and resolve_device("auto", True) == "cuda":
        tile = np.linspace(0.5, 2.0, 48 * 40, dtype=np.float32).reshape(48, 40)
        tile[7, 9] = np.nan
        for name in TORCH_FILTERS:
            apply_filter(name, tile, window=7, device="auto")
