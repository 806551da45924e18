"""The paper's preprocessing chain: band selection, speckle filters, dB, linear stretch."""

from .filters import (FILTERS, apply_filter, boxcar, filter_halo, frost, gamma_map, lee, median,
                      refined_lee)
from .pipeline import FilterSpec, Pipeline, StretchSpec
from .radiometry import output_values, stretch_to_uint8, to_db, to_domain
from .stretch import StretchLimits

__all__ = [
    "FILTERS", "apply_filter", "boxcar", "filter_halo", "frost", "gamma_map", "lee", "median", "refined_lee",
    "FilterSpec", "Pipeline", "StretchSpec", "StretchLimits", "output_values", "stretch_to_uint8", "to_db",
    "to_domain",
]
