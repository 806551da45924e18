"""Speckle filters on CUDA (torch) against the numba CPU kernels: agreement and speed.

Run on a machine with a CUDA GPU:  python bench/bench_gpu_filters.py
Agreement: the REFINED_LEE.md criterion (>= 99.99 % of uint8 pixels within one grey level after
a common dB + 2-98 % stretch) and the largest relative difference. Timings are medians and
include the host -> device -> host copies (what the app pays per tile).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np  # noqa: E402
from common import machine, median_ms, speckled  # noqa: E402

from sarlang_core.preprocess.filters import TORCH_FILTERS, apply_filter, warmup  # noqa: E402


def uint8_agreement(a: np.ndarray, b: np.ndarray) -> float:
    da, db = (10 * np.log10(np.maximum(x.astype(np.float64), 1e-10)) for x in (a, b))
    lo, hi = np.percentile(da, [2, 98])
    qa, qb = (np.clip((d - lo) / (hi - lo) * 255, 0, 255).round() for d in (da, db))
    return float(np.mean(np.abs(qa - qb) <= 1))


def main() -> None:
    import torch

    print(machine())
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to compare")
        return
    print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
    on_device_tiles()
    warmup()
    params = dict(window=7, looks=1.0, damping=2.0)
    for size in (1024, 4096):
        band = speckled(size, size, seed=size)
        band[:40, :40] = np.nan
        for name in TORCH_FILTERS:
            cpu = apply_filter(name, band, device="cpu", **params)
            gpu = apply_filter(name, band, device="cuda", **params)
            valid = ~np.isnan(cpu)
            assert np.array_equal(valid, ~np.isnan(gpu)), f"{name}: nodata differs"
            rel = float(np.max(np.abs(gpu[valid] - cpu[valid]) / np.maximum(np.abs(cpu[valid]), 1e-12)))
            agree = uint8_agreement(cpu[valid], gpu[valid])
            t_cpu = median_ms(lambda name=name, band=band: apply_filter(name, band, device="cpu", **params), runs=5)

            def on_gpu(name=name, band=band):
                apply_filter(name, band, device="cuda", **params)
                torch.cuda.synchronize()

            t_gpu = median_ms(on_gpu, runs=7)
            mp = size * size / 1e6
            print(f"{name:12s} {size:5d}²  cpu {t_cpu:8.1f} ms ({mp / t_cpu * 1e3:6.1f} MP/s)  "
                  f"cuda {t_gpu:7.1f} ms ({mp / t_gpu * 1e3:7.1f} MP/s)  uint8 within 1: {agree * 100:.4f} %  "
                  f"max rel diff {rel:.2e}  {'OK' if agree >= 0.9999 else 'MISMATCH'}")


def on_device_tiles() -> None:
    """Refined Lee on 1024² float32 tiles already on the GPU (no copies), eager against fused
    (torch.compile); the issue's goal is >= 1 gigapixel/s."""
    import os

    import torch

    from sarlang_core.preprocess.filters import torch_fused
    from sarlang_core.preprocess.filters.torch_backend import refined_lee_tensor

    band = torch.from_numpy(speckled(1030, 1030, seed=3)).cuda()      # 1024² + the 3 px halo each side
    results = {}
    for mode in ("0", "auto"):
        os.environ[torch_fused.ENV_COMPILE] = mode
        fn = torch_fused.fused(refined_lee_tensor, band.device)
        t0 = time.perf_counter()
        want = fn(band)
        torch.cuda.synchronize()
        first = time.perf_counter() - t0

        def once(fn=fn):
            fn(band)
            torch.cuda.synchronize()

        ms = median_ms(once, runs=21, warmup=3)
        results[mode] = want
        label = "eager" if mode == "0" else "fused"
        print(f"refined Lee 1024² on-GPU {label}: {ms:7.3f} ms = {1.048576 / ms:6.2f} Gpx/s "
              f"(first call {first:.1f} s)  {torch_fused.fused_note()}")
    a, b = results["0"], results["auto"]
    ok = ~torch.isnan(a)
    rel = ((a - b).abs() / a.abs().clamp(min=1e-12))[ok].max().item()
    print(f"fused against eager: max rel diff {rel:.2e}, NaN pattern same: {bool((torch.isnan(b) == ~ok).all())}")


if __name__ == "__main__":
    main()
