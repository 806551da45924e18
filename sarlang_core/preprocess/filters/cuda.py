"""Whether torch can filter on a CUDA GPU, and which device "auto" picks."""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from sarlang_core.errors import PipelineError

log = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda", "torch-cpu")
# Which of numba and CUDA is faster is measured on the machine (device_probe.py): on an H100 host
# a 1024² refined-Lee tile took 14.7 ms through CUDA (copies included) against 6.9 ms on 16 CPU
# cores and ~30 ms on 2 (BENCHMARKS.md), so no core count decides it everywhere.
ENV_DEVICE = "SARLANG_FILTER_DEVICE"

_cuda_ok: bool | None = None
_lost: str = ""          # why the GPU stopped being used in this process ("" while it is fine)


def cuda_driver_present() -> bool:
    """Whether an NVIDIA driver library loads: without one torch cannot see a GPU, and importing
    torch only to learn that costs ~1.5 s and ~300 MB of memory."""
    import ctypes

    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_available() -> bool:
    """True when torch imports and sees a CUDA device (cached; imports torch only where an NVIDIA
    driver is installed)."""
    global _cuda_ok
    if _cuda_ok is None:
        if sys.platform == "darwin" or not cuda_driver_present():
            _cuda_ok = False
            return _cuda_ok
        try:
            import torch

            _cuda_ok = bool(torch.cuda.is_available())
        except Exception:  # no torch, or a broken CUDA install: the numba path still works
            log.info("torch cannot use CUDA; the filters run on numba", exc_info=True)
            _cuda_ok = False
    return _cuda_ok


def choose_device(device: str, torch_path: bool, *, cuda_ok: bool, cuda_faster: Callable[[], bool] = lambda: False,
                  forced: str = "") -> str:
    """Where a filter runs: "numba", "cuda" or "torch-cpu".

    "auto" uses torch on CUDA when CUDA is there, the filter has a torch path and ``cuda_faster()``
    (measured on this machine, asked only then); ``forced`` (SARLANG_FILTER_DEVICE=cpu|numba|cuda)
    overrides the measurement of "auto" but cannot conjure a GPU. "cpu" is always numba; "cuda" and
    "torch-cpu" are torch (filters without a torch path run on numba). "cuda" without CUDA raises.
    """
    if device not in DEVICES:
        raise PipelineError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not cuda_ok:
        raise PipelineError("device 'cuda' was asked for but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if not torch_path or device == "cpu":
        return "numba"
    if device in ("cuda", "torch-cpu"):
        return device
    forced = forced.lower()
    if forced in ("cpu", "numba") or not cuda_ok:
        return "numba"
    return "cuda" if forced == "cuda" or cuda_faster() else "numba"


def prefer_cuda() -> bool:
    """Whether "auto" runs the torch CUDA path for a filter that has one."""
    return resolve_device("auto", True) == "cuda"


def resolve_device(device: str, torch_path: bool) -> str:
    """``choose_device`` with this machine's CUDA, its measured speeds and SARLANG_FILTER_DEVICE."""
    from .device_probe import cuda_is_faster

    needs_probe = device == "cuda" or (device == "auto" and torch_path
                                       and os.environ.get(ENV_DEVICE, "").lower() not in ("cpu", "numba"))
    return choose_device(device, torch_path, cuda_ok=cuda_available() if needs_probe else False,
                         cuda_faster=cuda_is_faster, forced=os.environ.get(ENV_DEVICE, ""))


def gpu_failed(exc: BaseException) -> None:
    """The CUDA path raised mid-work (a GPU lost or reset, a driver fault): this process filters on
    numba from now on and ``device_note`` says why. Out of memory is not a lost GPU: only that tile
    falls back (the caller's business)."""
    global _cuda_ok, _lost
    _cuda_ok = False
    _lost = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}".rstrip(": ")
    log.warning("the GPU filter path failed (%s); filtering on the CPU (numba) from now on", _lost)


def device_note() -> str:
    """A sentence for the status bar when the filters left the GPU or run on it unfused, else ''."""
    if _lost:
        return f"The GPU stopped working for preprocessing ({_lost}); filtering on the CPU."
    from .torch_fused import fused_note

    note = fused_note()
    return f"GPU filters run unfused, slower: {note}." if note else ""
