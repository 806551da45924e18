"""Speckle filters: refined Lee (SNAP semantics), boxcar, median, Lee, Frost, Gamma-MAP.

Common semantics
----------------
* Input: a 2-D real array (float or integer). Output: float64 for float64 input, else float32,
  same shape; a new array, the input is never modified.
* Invalid pixels are the non-finite ones and, when ``nodata`` is given, those equal to it
  (compared in the band's own dtype). They are copied to the output unchanged and never enter
  a neighbour's statistics. Pixels outside the image are treated exactly like invalid ones, which
  makes tiled filtering with a ``filter_halo`` context equal whole-image filtering.
* Where a window is incomplete (border, nodata) each filter uses the valid pixels of its window.
* Computation is float64 throughout; only the final value is rounded to the output type.

The modules
-----------
``registry`` (name -> FilterDef: its CPU function, parameters, halo, torch path), ``params``
(each parameter's bounds and help, once), ``checks`` (argument checks), ``dispatch``
(``apply_filter``, ``filter_halo``), ``cuda`` (the CUDA probe and the device policy), ``pool``
(the row thread pool), ``numba_cache`` (where compiled kernels go), ``cpu`` (the filters on numba),
``refined_lee``/``classic`` (the numba kernels), ``torch_backend`` (the torch versions) and
``warmup``. Importing this package imports neither numba nor torch, touches no environment
variable and starts no thread; the kernels are imported at first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checks import check_band, check_damping, check_looks, check_window
from .cuda import DEVICES, cuda_available, device_note, prefer_cuda
from .dispatch import apply_filter, filter_halo
from .pool import POOL, ROWS_PER_TASK
from .registry import FILTERS, REGISTRY, TORCH_FILTERS, FilterDef
from .warmup import warmup

if TYPE_CHECKING:
    from .cpu import boxcar, frost, gamma_map, lee, median, refined_lee

_CPU_FILTERS = ("boxcar", "frost", "gamma_map", "lee", "median", "refined_lee")

__all__ = [
    "DEVICES", "FILTERS", "POOL", "REGISTRY", "ROWS_PER_TASK", "TORCH_FILTERS",
    "FilterDef", "apply_filter", "boxcar", "check_band", "check_damping", "check_looks", "check_window",
    "cuda_available", "device_note", "filter_halo", "frost", "gamma_map", "lee", "median", "prefer_cuda", "refined_lee",
    "warmup",
]


def __getattr__(name: str):
    """The CPU filter functions, imported at first use (importing them compiles the kernels)."""
    if name in _CPU_FILTERS:
        from . import cpu

        return getattr(cpu, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
