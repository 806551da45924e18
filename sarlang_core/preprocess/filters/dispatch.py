"""``apply_filter`` and ``filter_halo``: run a filter by name, on the device the policy picks."""

from __future__ import annotations

import numpy as np

from sarlang_core.errors import PipelineError

from . import registry
from .cuda import gpu_failed, resolve_device


def filter_halo(name, window=5) -> int:
    """Pixels of context a tile needs on each side for ``name`` to equal whole-image output."""
    return registry.get(name).halo(window)


def apply_filter(name, band, *, window=5, looks=1.0, damping=2.0, snap_exact=False, nodata=None,
                 device="auto") -> np.ndarray:
    """Run filter ``name`` (one of FILTERS); parameters a filter does not take are ignored.

    device: "auto" uses torch on CUDA when it is available, the filter has a torch path
    (TORCH_FILTERS) and the GPU measured faster than numba here (``cuda.choose_device``, ``device_probe``),
    else the numba kernels; "cpu" always numba; "cuda" torch on CUDA (PipelineError when CUDA is
    unavailable; filters without a torch path, i.e. median, run on numba); "torch-cpu" the torch
    path on the CPU (tests), median again on numba.
    """
    fdef = registry.get(name)
    where = resolve_device(device, fdef.torch)
    values = {"window": window, "looks": looks, "damping": damping, "snap_exact": snap_exact}
    kwargs = {p: values[p] for p in fdef.param_names}
    if where == "numba":
        return fdef.numba_function()(band, nodata=nodata, **kwargs)
    from . import torch_backend

    if where == "torch-cpu":
        return torch_backend.apply(name, band, nodata=nodata, device="cpu", **kwargs)
    try:
        return torch_backend.apply(name, band, nodata=nodata, device="cuda", **kwargs)
    except PipelineError:
        raise                                  # the input's fault: the same on any device
    except Exception as exc:                   # the GPU's: out of memory, lost, reset, a driver fault
        if device == "cuda":
            raise PipelineError(f"{name} on the GPU failed ({type(exc).__name__}: {exc})") from exc
        if not _out_of_memory(exc):
            gpu_failed(exc)
        return fdef.numba_function()(band, nodata=nodata, **kwargs)


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)
