"""The speckle filters by name: what each one takes and how it runs.

Adding a filter = its kernel (a function in ``cpu.py`` taking ``band, *, nodata, **params``) and
one entry in ``REGISTRY``; set ``torch=True`` once ``torch_backend.TORCH_FUNCTIONS`` has it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sarlang_core.errors import PipelineError

from .params import DAMPING, LOOKS, SNAP_EXACT, WINDOW, Param


@dataclass(frozen=True)
class FilterDef:
    name: str
    label: str                       # what a person reads in a list of filters
    numba: str                       # its function in cpu.py
    params: tuple[Param, ...] = ()   # the parameters it reads (others are ignored)
    fixed_window: int | None = None
    torch: bool = False              # whether torch_backend has it (CUDA / torch-cpu)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def halo(self, window=5) -> int:
        """Pixels of context a tile needs on each side to equal whole-image output."""
        if self.fixed_window is not None:
            return self.fixed_window // 2
        if WINDOW in self.params:
            return WINDOW.check(window) // 2
        return 0

    def numba_function(self) -> Callable:
        from . import cpu  # imports the kernels (after numba's cache folder is set)

        return getattr(cpu, self.numba)


REGISTRY: dict[str, FilterDef] = {f.name: f for f in (
    FilterDef("none", "None (raw)", "copy_band"),
    FilterDef("boxcar", "Boxcar (mean)", "boxcar", (WINDOW,), torch=True),
    FilterDef("median", "Median", "median", (WINDOW,)),
    FilterDef("lee", "Lee", "lee", (WINDOW, LOOKS), torch=True),
    FilterDef("refined-lee", "Refined Lee (SNAP, 7×7)", "refined_lee", (SNAP_EXACT,), fixed_window=7, torch=True),
    FilterDef("frost", "Frost", "frost", (WINDOW, DAMPING), torch=True),
    FilterDef("gamma-map", "Gamma-MAP", "gamma_map", (WINDOW, LOOKS), torch=True),
)}
FILTERS = tuple(REGISTRY)
TORCH_FILTERS = tuple(name for name, f in REGISTRY.items() if f.torch)


def get(name) -> FilterDef:
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise PipelineError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}") from None
