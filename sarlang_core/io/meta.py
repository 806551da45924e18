"""Small value types of scene I/O and the metadata guesses (polarisation, quantity, band names)."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence, Tuple

from ..errors import SarlangError

POLARISATIONS = ("HH", "HV", "VH", "VV")
# Letters may not touch the code ("Sigma0_VV_db", "s1a-iw-grd-vh-...", "vv" match; "VVdb" does not).
_POL_RE = re.compile(r"(?<![A-Za-z])(HH|HV|VH|VV)(?![A-Za-z])", re.IGNORECASE)
_DB_RE = re.compile(r"(?<![a-z])(db|decibels?)(?![a-z])", re.IGNORECASE)
_INTENSITY_RE = re.compile(r"intensity|sigma_?0|sigma_?nought|gamma_?0|beta_?0|(?<![a-z])power(?![a-z])", re.IGNORECASE)
_AMPLITUDE_RE = re.compile(r"amplitude|magnitude|(?<![a-z])amp(?![a-z])", re.IGNORECASE)
_QUANTITY_KEYS = ("quantity", "sarlang_quantity")
_POL_KEYS = ("polarisation", "polarization", "pol", "polarisations", "polarizations")


@dataclass(frozen=True)
class Window:
    """A pixel rectangle in one level's grid. Offsets may be negative (``read_padded`` halos)."""

    col_off: int
    row_off: int
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("col_off", "row_off", "width", "height"):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, operator.index(value))
            except TypeError:
                raise SarlangError(f"window {name} must be an integer, got {value!r}") from None
        if self.width < 0 or self.height < 0:
            raise SarlangError(f"window size must be >= 0, got {self.width} x {self.height}")

    @classmethod
    def full(cls, width: int, height: int) -> "Window":
        return cls(0, 0, width, height)

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.height, self.width)

    def inside(self, width: int, height: int) -> bool:
        return (self.col_off >= 0 and self.row_off >= 0
                and self.col_off + self.width <= width and self.row_off + self.height <= height)

    def clip(self, width: int, height: int) -> Optional["Window"]:
        """The part of this window inside a width x height raster, or None when they do not meet."""
        c0, r0 = max(0, self.col_off), max(0, self.row_off)
        c1, r1 = min(width, self.col_off + self.width), min(height, self.row_off + self.height)
        if c1 <= c0 or r1 <= r0:
            return None
        return Window(c0, r0, c1 - c0, r1 - r0)

    def slices(self) -> Tuple[slice, slice]:
        """(rows, cols) slices of this window in an array covering the whole level."""
        return (slice(self.row_off, self.row_off + self.height), slice(self.col_off, self.col_off + self.width))


@dataclass(frozen=True)
class Level:
    """One resolution level: 0 = full resolution; ``factor`` = full width / this width (rounded)."""

    index: int
    factor: int
    width: int
    height: int


@dataclass(frozen=True)
class BandInfo:
    index: int                    # 0-based
    name: str                     # description, else polarisation, else "band N" (1-based)
    description: str
    polarisation: Optional[str]   # HH | HV | VH | VV | None


def parse_polarisation(*texts: Optional[str]) -> Optional[str]:
    """The first polarisation code found in the texts (case-insensitive), upper-cased."""
    for text in texts:
        if text:
            m = _POL_RE.search(str(text))
            if m:
                return m.group(1).upper()
    return None


# Words in a scene's warnings that say its values may already be decibels (see Scene.db_warnings).
DB_MARKS = ("look like decibels", "negative values")


def is_db(text: Optional[str]) -> bool:
    return bool(text) and bool(_DB_RE.search(str(text)))


def quantity_hint(text: Optional[str]) -> Optional[str]:
    """'intensity' / 'amplitude' when the text names one (e.g. 'Sigma0_VV', 'Amplitude_HH')."""
    if not text:
        return None
    if _AMPLITUDE_RE.search(str(text)):
        return "amplitude"
    if _INTENSITY_RE.search(str(text)):
        return "intensity"
    return None


def tag_value(tags: Mapping[str, str], keys: Iterable[str]) -> Optional[str]:
    lowered = {str(k).lower(): v for k, v in tags.items()}
    for key in keys:
        if key in lowered and str(lowered[key]).strip():
            return str(lowered[key]).strip()
    return None


def make_bands(descriptions: Sequence[Optional[str]], band_tags: Sequence[Mapping[str, str]],
               dataset_tags: Mapping[str, str], filename: str) -> Tuple[BandInfo, ...]:
    """BandInfo per band from descriptions, band tags, dataset tags and (single band) the file name."""
    count = len(descriptions)
    ds_pol = tag_value(dataset_tags, _POL_KEYS)
    ds_pols = [p.upper() for p in _POL_RE.findall(ds_pol or "")]
    bands = []
    for i, desc in enumerate(descriptions):
        desc = (desc or "").strip()
        tags = band_tags[i] if i < len(band_tags) else {}
        pol = parse_polarisation(desc, tag_value(tags, _POL_KEYS), tags.get("name"))
        if pol is None and len(ds_pols) == count:   # e.g. POLARISATIONS="VV VH" for a 2-band file
            pol = ds_pols[i]
        if pol is None and count == 1:
            pol = parse_polarisation(filename)
        name = desc or tags.get("name", "") or pol or f"band {i + 1}"
        bands.append(BandInfo(i, name, desc, pol))
    return tuple(bands)


def guess_quantity(bands: Sequence[BandInfo], band_tags: Sequence[Mapping[str, str]],
                   dataset_tags: Mapping[str, str], is_complex: bool) -> Tuple[str, list]:
    """(quantity, warnings). An explicit QUANTITY tag wins; dB data gives 'unknown' and a warning."""
    warnings: list = []
    if is_complex:
        return "intensity", warnings
    texts = [b.description for b in bands] + [tag_value(t, _QUANTITY_KEYS) or "" for t in band_tags]
    db_bands = [b.name for b in bands if is_db(b.description)]
    if db_bands:
        warnings.append(f"band(s) {', '.join(db_bands)} look like decibels; the preprocessing chain "
                        "expects linear intensity or amplitude, so the dB step would be applied twice "
                        "unless the pipeline's quantity says dB")
        return "unknown", warnings
    explicit = tag_value(dataset_tags, _QUANTITY_KEYS)
    if explicit and explicit.lower() in ("intensity", "amplitude"):
        return explicit.lower(), warnings
    hints = {h for h in (quantity_hint(t) for t in texts) if h}
    hints |= {h for h in (quantity_hint(v) for v in dataset_tags.values() if isinstance(v, str) and len(v) < 80) if h}
    if len(hints) == 1:
        return hints.pop(), warnings
    return "unknown", warnings
