"""The paper's preprocessing chain: band selection, speckle filters, dB, linear stretch."""

from .filters import FILTERS, apply_filter, filter_halo
from .pipeline import FilterSpec, Pipeline, StretchSpec
from .radiometry import output_values, stretch_to_uint8, to_db, to_domain
from .stretch import StretchLimits

_CPU_FILTERS = ("boxcar", "frost", "gamma_map", "lee", "median", "refined_lee")

__all__ = [
    "FILTERS", "apply_filter", "boxcar", "filter_halo", "frost", "gamma_map", "lee", "median", "refined_lee",
    "FilterSpec", "Pipeline", "StretchSpec", "StretchLimits", "output_values", "stretch_to_uint8", "to_db",
    "to_domain",
]


def __getattr__(name: str):
    # the CPU filters import (and compile) the numba kernels: only when asked for
    if name in _CPU_FILTERS:
        from . import filters

        return getattr(filters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
