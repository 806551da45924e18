"""The paper's preprocessing chain as an immutable, JSON-serialisable recipe.

band selection -> (amplitude <-> intensity) -> speckle filter -> 10 log10 (floored) -> linear
percentile stretch to uint8. The same Pipeline drives the live view, exports, datasets, chat and
benchmarks, and is written beside every artefact it produced.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import PipelineError
from .filters import FILTERS

QUANTITIES = ("auto", "intensity", "amplitude")
DOMAINS = ("intensity", "amplitude")
LIMIT_MODES = ("estimate", "exact")
SCHEMA = "sarlang.pipeline/1"


def _meta(help: str, **bounds: Any) -> dict:
    return {"help": help, **bounds}


@dataclass(frozen=True)
class FilterSpec:
    """A speckle filter and its parameters (unused parameters are ignored by a filter)."""

    name: str = field(default="refined-lee", metadata=_meta("speckle filter", choices=FILTERS))
    window: int = field(default=7, metadata=_meta("window size (odd); refined Lee is fixed at 7", min=3, max=31))
    looks: float = field(default=1.0, metadata=_meta("equivalent number of looks (Lee, Gamma-MAP)", min=0.1, max=100.0))
    damping: float = field(default=2.0, metadata=_meta("Frost damping factor", min=0.0, max=20.0))
    snap_exact: bool = field(default=False, metadata=_meta("reproduce ESA SNAP's two refined-Lee quirks"))

    def __post_init__(self) -> None:
        if self.name not in FILTERS:
            raise PipelineError(f"unknown filter {self.name!r}; choose one of {', '.join(FILTERS)}")
        if not isinstance(self.window, int) or self.window < 3 or self.window > 31 or self.window % 2 == 0:
            raise PipelineError(f"filter window must be an odd integer from 3 to 31, got {self.window!r}")
        if not (self.looks > 0):
            raise PipelineError(f"looks must be > 0, got {self.looks!r}")
        if not (self.damping >= 0):
            raise PipelineError(f"Frost damping must be >= 0, got {self.damping!r}")

    @property
    def effective_window(self) -> int:
        return 7 if self.name == "refined-lee" else self.window

    def label(self) -> str:
        if self.name == "none":
            return "no filter"
        if self.name == "refined-lee":
            return "refined Lee 7x7" + (" (SNAP exact)" if self.snap_exact else "")
        extra = {"lee": f", L={self.looks:g}", "gamma-map": f", L={self.looks:g}", "frost": f", damping={self.damping:g}"}
        return f"{self.name} {self.window}x{self.window}{extra.get(self.name, '')}"


@dataclass(frozen=True)
class StretchSpec:
    """Linear stretch between two scene-wide percentiles, to uint8 0..255."""

    low: float = field(default=2.0, metadata=_meta("lower percentile", min=0.0, max=100.0))
    high: float = field(default=98.0, metadata=_meta("upper percentile", min=0.0, max=100.0))
    limits: str = field(default="estimate", metadata=_meta("estimate from an overview, or exact over the full scene", choices=LIMIT_MODES))

    def __post_init__(self) -> None:
        if not (0.0 <= self.low < self.high <= 100.0):
            raise PipelineError(f"stretch percentiles need 0 <= low < high <= 100, got {self.low}, {self.high}")
        if self.limits not in LIMIT_MODES:
            raise PipelineError(f"stretch limits must be one of {LIMIT_MODES}, got {self.limits!r}")


@dataclass(frozen=True)
class Pipeline:
    band: Union[int, str] = field(default=0, metadata=_meta("band index (0-based) or polarisation name, e.g. VV"))
    quantity: str = field(default="auto", metadata=_meta("what the band holds", choices=QUANTITIES))
    domain: str = field(default="intensity", metadata=_meta("filter on intensity or amplitude", choices=DOMAINS))
    filter: FilterSpec = field(default_factory=FilterSpec)
    db: bool = field(default=True, metadata=_meta("10 log10 of intensity"))
    db_floor: float = field(default=-50.0, metadata=_meta("dB value given to zero/negative intensity", min=-200.0, max=0.0))
    stretch: Optional[StretchSpec] = field(default_factory=StretchSpec)

    def __post_init__(self) -> None:
        if isinstance(self.band, bool) or not isinstance(self.band, (int, str)):
            raise PipelineError(f"band must be an index or a name, got {self.band!r}")
        if isinstance(self.band, int) and self.band < 0:
            raise PipelineError(f"band index must be >= 0, got {self.band}")
        if self.quantity not in QUANTITIES:
            raise PipelineError(f"quantity must be one of {QUANTITIES}, got {self.quantity!r}")
        if self.domain not in DOMAINS:
            raise PipelineError(f"filter domain must be one of {DOMAINS}, got {self.domain!r}")
        if not isinstance(self.filter, FilterSpec):
            raise PipelineError("filter must be a FilterSpec")
        if self.stretch is not None and not isinstance(self.stretch, StretchSpec):
            raise PipelineError("stretch must be a StretchSpec or None")

    # -- derived recipes ------------------------------------------------------------------
    def with_(self, **changes: Any) -> "Pipeline":
        return replace(self, **changes)

    def with_filter(self, **changes: Any) -> "Pipeline":
        return replace(self, filter=replace(self.filter, **changes))

    def raw(self) -> "Pipeline":
        """The same chain without the speckle filter: what the 'before' view shows."""
        return self.with_filter(name="none")

    @property
    def output_unit(self) -> str:
        return "dB" if self.db else ("intensity" if self.domain == "intensity" else "amplitude")

    def describe(self) -> str:
        parts = [f"band {self.band}", self.filter.label()]
        if self.db:
            parts.append("10·log10")
        if self.stretch is not None:
            parts.append(f"stretch {self.stretch.low:g}-{self.stretch.high:g}% ({self.stretch.limits})")
        return " → ".join(parts)

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> "Pipeline":
        if not isinstance(data, dict):
            raise PipelineError("a pipeline must be a JSON object")
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise PipelineError(f"unsupported pipeline schema {schema!r} (expected {SCHEMA})")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise PipelineError(f"unknown pipeline field(s): {', '.join(sorted(unknown))}")
        try:
            if "filter" in data:
                data["filter"] = FilterSpec(**data["filter"])
            if data.get("stretch") is not None:
                data["stretch"] = StretchSpec(**data["stretch"])
            return cls(**data)
        except TypeError as exc:
            raise PipelineError(f"invalid pipeline: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> "Pipeline":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"pipeline is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "Pipeline":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"{path}: cannot read pipeline file ({exc.strerror or exc})") from None
        try:
            return cls.from_json(text)
        except PipelineError as exc:
            raise PipelineError(f"{path}: {exc}") from None
