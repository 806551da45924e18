"""The filter parameters, each described once: type, bounds, step, unit and help.

These descriptions are the single source of the bounds: the filter functions check their
arguments with them, ``FilterSpec`` carries them as field metadata (and validates with them), the
pipeline panel builds its spin boxes from them and the CLI its help text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from sarlang_core.errors import PipelineError


@dataclass(frozen=True)
class Param:
    """One number or switch of a recipe. ``min_open`` makes ``min`` itself invalid (> min)."""

    name: str
    kind: type                      # int, float, bool or str
    help: str
    label: str = ""                 # what a person calls it ("Frost damping")
    min: float | None = None
    max: float | None = None
    ui_max: float | None = None  # where a slider or spin box ends when ``max`` is open
    min_open: bool = False
    odd: bool = False
    step: float | None = None
    decimals: int = 1
    unit: str = ""
    choices: tuple[str, ...] = ()

    @property
    def ui_range(self) -> tuple[float, float]:
        """The range a control offers: the bounds, the smallest step above an open minimum, and
        ``ui_max`` where there is no maximum."""
        low = self.min if self.min is not None else -1e9
        if self.min_open:
            low += (self.step or 1) if self.kind is int else 10.0 ** -self.decimals
        high = self.max if self.max is not None else (self.ui_max if self.ui_max is not None else 1e9)
        return low, high

    def metadata(self) -> dict:
        """Field metadata for a config dataclass (``field(metadata=P.metadata())``)."""
        return {"param": self, "help": self.help}

    def range_text(self) -> str:
        """The bounds in words: "from 3 to 31", "> 0", "" when unbounded."""
        if self.min is not None and self.max is not None and not self.min_open:
            return f"from {self.min:g} to {self.max:g}"
        parts = []
        if self.min is not None:
            parts.append(f"{'>' if self.min_open else '>='} {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)

    def bounds_text(self) -> str:
        """What a valid value is, in words ("an odd integer from 3 to 31")."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        kind = "an odd integer" if self.odd else ("an integer" if self.kind is int else "a number")
        return f"{kind} {self.range_text()}".strip()

    def check(self, value: Any) -> Any:
        """``value`` converted to the parameter's type, or a PipelineError saying what is allowed."""
        what = self.label or self.name
        if self.kind is bool:
            if not isinstance(value, bool):
                raise PipelineError(f"{what} must be true or false, got {value!r}")
            return value
        if self.kind is str:
            if value not in self.choices:
                raise PipelineError(f"unknown {what} {value!r}; choose {self.bounds_text()}")
            return value
        wrong_type = isinstance(value, bool) or not isinstance(value, Integral if self.kind is int else Real)
        if wrong_type or not math.isfinite(value):
            raise PipelineError(f"{what} must be {self.bounds_text()}, got {value!r}")
        value = self.kind(value)
        low_bad = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high_bad = self.max is not None and value > self.max
        if low_bad or high_bad or (self.odd and value % 2 == 0):
            raise PipelineError(f"{what} must be {self.bounds_text()}, got {value!r}")
        return value


WINDOW = Param("window", int, "window size in pixels, odd; refined Lee is fixed at 7 x 7", label="filter window",
               min=3, max=31, odd=True, step=2, unit="px")
LOOKS = Param("looks", float, "equivalent number of looks of the data (Lee, Gamma-MAP)", label="number of looks",
              min=0.0, min_open=True, ui_max=100.0, step=0.5)
DAMPING = Param("damping", float, "Frost damping factor: 0 is the boxcar mean, larger keeps more detail",
                label="Frost damping", min=0.0, ui_max=20.0, step=0.5)
SNAP_EXACT = Param("snap_exact", bool,
                   "reproduce ESA SNAP's two refined-Lee quirks: noise from the 5 smallest of only the "
                   "first 8 sub-areas, and 0 (black) where the window is perfectly flat", label="SNAP-exact quirks")
