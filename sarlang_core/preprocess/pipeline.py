"""The paper's preprocessing chain as an immutable, JSON-serialisable recipe.

band selection -> (amplitude <-> intensity) -> speckle filter -> 10 log10 (floored) -> linear
percentile stretch to uint8. The same Pipeline drives the live view, exports, datasets, chat and
benchmarks, and is written beside every artefact it produced.
"""

from __future__ import annotations

import errno
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from ..errors import PipelineError
from .filters.params import DAMPING, LOOKS, SNAP_EXACT, WINDOW, Param
from .filters.registry import FILTERS, REGISTRY
from .stretch import EXACT_SOURCE

QUANTITIES = ("auto", "intensity", "amplitude", "db")
DOMAINS = ("intensity", "amplitude")
LIMIT_MODES = ("estimate", "exact")
SCHEMA = "sarlang.pipeline/1"
# For the GUI, which may import this module but not the filters package: each filter's label and
# the FilterSpec fields it reads; and how a limits line says "exact" (see StretchLimits.describe).
FILTER_LABELS = {name: f.label for name, f in REGISTRY.items()}
FILTER_USES = {name: f.param_names for name, f in REGISTRY.items()}
__all__ = ["DAMPING", "DB", "DB_FLOOR", "DOMAIN", "EXACT_SOURCE", "FILTERS", "FILTER_LABELS", "FILTER_NAME",
           "FILTER_USES", "HIGH", "LIMITS", "LOOKS", "LOW", "QUANTITY", "SNAP_EXACT", "WINDOW", "FilterSpec",
           "Param", "Pipeline", "StretchSpec", "field_params"]

# Every bound and choice of a recipe, once: the dataclasses below validate with them, the
# pipeline panel builds its controls from them and the CLI its choices and help.
FILTER_NAME = Param("name", str, "speckle filter", label="filter", choices=FILTERS)
QUANTITY = Param("quantity", str, "what the band holds: auto reads the scene's metadata; db: the values are "
                 "already 10 log10 intensity (converted back to linear intensity before the filter, so the "
                 "log is not taken twice)", label="quantity", choices=QUANTITIES)
DOMAIN = Param("domain", str, "filter on intensity or amplitude", label="filter domain", choices=DOMAINS)
DB = Param("db", bool, "10 log10 of intensity (dB) before the stretch", label="dB")
DB_FLOOR = Param("db_floor", float, "dB value given to zero or negative intensity", label="dB floor",
                 min=-200.0, max=0.0, unit="dB")
LOW = Param("low", float, "lower percentile of the scene mapped to black", label="lower stretch percentile",
            min=0.0, max=100.0, step=0.5, unit="%")
HIGH = Param("high", float, "upper percentile of the scene mapped to white", label="upper stretch percentile",
             min=0.0, max=100.0, step=0.5, unit="%")
LIMITS = Param("limits", str, "estimate the percentiles from an overview, or compute them exactly over the "
               "full scene (an extra pass)", label="stretch limits", choices=LIMIT_MODES)


def _validate(obj: Any) -> None:
    """Check (and normalise: numpy scalars -> Python numbers) every field that carries a Param."""
    for f in fields(obj):
        param = f.metadata.get("param")
        if param is not None:
            object.__setattr__(obj, f.name, param.check(getattr(obj, f.name)))


def field_params(cls: type) -> dict[str, Param]:
    """Field name -> its Param for a config dataclass (the fields that have one)."""
    return {f.name: f.metadata["param"] for f in fields(cls) if "param" in f.metadata}


@dataclass(frozen=True)
class FilterSpec:
    """A speckle filter and its parameters (unused parameters are ignored by a filter)."""

    name: str = field(default="refined-lee", metadata=FILTER_NAME.metadata())
    window: int = field(default=7, metadata=WINDOW.metadata())
    looks: float = field(default=1.0, metadata=LOOKS.metadata())
    damping: float = field(default=2.0, metadata=DAMPING.metadata())
    snap_exact: bool = field(default=False, metadata=SNAP_EXACT.metadata())

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def effective_window(self) -> int:
        return REGISTRY[self.name].fixed_window or self.window

    def label(self) -> str:
        if self.name == "none":
            return "no filter"
        if self.name == "refined-lee":
            return "refined Lee 7x7" + (" (SNAP exact)" if self.snap_exact else "")
        extra = {"lee": f", L={self.looks:g}", "gamma-map": f", L={self.looks:g}",
                 "frost": f", damping={self.damping:g}"}
        return f"{self.name} {self.window}x{self.window}{extra.get(self.name, '')}"


@dataclass(frozen=True)
class StretchSpec:
    """Linear stretch between two scene-wide percentiles, to uint8 0..255."""

    low: float = field(default=2.0, metadata=LOW.metadata())
    high: float = field(default=98.0, metadata=HIGH.metadata())
    limits: str = field(default="estimate", metadata=LIMITS.metadata())

    def __post_init__(self) -> None:
        _validate(self)
        if not self.low < self.high:
            raise PipelineError(f"stretch percentiles need low < high, got {self.low:g}, {self.high:g}")


@dataclass(frozen=True)
class Pipeline:
    band: int | str = field(default=0, metadata={"help": "band index (0-based) or polarisation name, e.g. VV"})
    quantity: str = field(default="auto", metadata=QUANTITY.metadata())
    domain: str = field(default="intensity", metadata=DOMAIN.metadata())
    filter: FilterSpec = field(default_factory=FilterSpec)
    db: bool = field(default=True, metadata=DB.metadata())
    db_floor: float = field(default=-50.0, metadata=DB_FLOOR.metadata())
    stretch: StretchSpec | None = field(default_factory=StretchSpec)

    def __post_init__(self) -> None:
        if isinstance(self.band, bool) or not isinstance(self.band, (int, str)):
            raise PipelineError(f"band must be an index or a name, got {self.band!r}")
        if isinstance(self.band, int) and self.band < 0:
            raise PipelineError(f"band index must be >= 0, got {self.band}")
        _validate(self)
        if not isinstance(self.filter, FilterSpec):
            raise PipelineError("filter must be a FilterSpec")
        if self.stretch is not None and not isinstance(self.stretch, StretchSpec):
            raise PipelineError("stretch must be a StretchSpec or None")

    # -- derived recipes ------------------------------------------------------------------
    def with_(self, **changes: Any) -> Pipeline:
        return replace(self, **changes)

    def with_filter(self, **changes: Any) -> Pipeline:
        return replace(self, filter=replace(self.filter, **changes))

    def raw(self) -> Pipeline:
        """The same chain without the speckle filter: what the 'before' view shows."""
        return self.with_filter(name="none")

    @property
    def output_unit(self) -> str:
        return "dB" if self.db else ("intensity" if self.domain == "intensity" else "amplitude")

    def describe(self, band_name: str | None = None) -> str:
        """One line for people; ``band_name`` (what the scene calls the band) replaces "band N"."""
        parts = [band_name or f"band {self.band}", self.filter.label()]
        if self.db:
            parts.append("10·log10")
        if self.stretch is not None:
            parts.append(f"stretch {self.stretch.low:g}-{self.stretch.high:g}% ({self.stretch.limits})")
        return " → ".join(parts)

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"schema": SCHEMA, **asdict(self)}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict) -> Pipeline:
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
    def from_json(cls, text: str) -> Pipeline:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PipelineError(f"pipeline is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the recipe as JSON, whole or not at all (the old file survives a failure)."""
        path = Path(path)
        try:
            return write_text_atomic(path, self.to_json() + "\n")
        except OSError as exc:
            raise PipelineError(f"{path}: cannot save the pipeline: {_why(exc)}") from None

    @classmethod
    def load(cls, path: str | Path) -> Pipeline:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"{path}: cannot read pipeline file ({exc.strerror or exc})") from None
        try:
            return cls.from_json(text)
        except PipelineError as exc:
            raise PipelineError(f"{path}: {exc}") from None


def _why(exc: OSError) -> str:
    hints = {
        errno.ENOSPC: "the disk is full; free some space or choose another folder",
        errno.EDQUOT: "the disk quota is used up; free some space or choose another folder",
        errno.EACCES: "permission denied; choose a folder you can write to",
        errno.EPERM: "permission denied; choose a folder you can write to",
        errno.EROFS: "the folder is on a read-only disk; choose another folder",
        errno.ENOENT: "the folder does not exist",
        errno.ENOTDIR: "part of the path is a file, not a folder",
        errno.EEXIST: "part of the path is a file, not a folder",  # mkdir of the parent folder
        errno.EISDIR: "that path is a folder; give a file name",
    }
    return hints.get(exc.errno or 0, exc.strerror or str(exc))
