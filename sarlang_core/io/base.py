"""The Scene: a lazily read SAR raster with levels, bands and georeferencing.

Subclasses (GDAL rasters, .npy arrays, PNG/JPEG chips) fill in the attributes in ``__init__``
and implement ``_read_raw``; everything a caller uses lives here.

Values returned by ``read`` are float32 with NaN where invalid (nodata, NaN, Inf in the source).
Complex data: full-resolution levels hold complex samples and ``read`` returns I^2+Q^2
(intensity) or its square root (amplitude); overview levels of complex data hold averaged
intensity (a multilook), so amplitude there is sqrt(mean intensity).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from affine import Affine

from ..errors import SarlangError
from .meta import DB_MARKS, BandInfo, Level, Window, is_db

log = logging.getLogger(__name__)

COMPLEX_AS = ("intensity", "amplitude")


def _apply(t: Affine, x: float, y: float) -> Tuple[float, float]:
    # spelled out: affine 3 deprecates ``t * (x, y)`` and affine 2 lacks ``t @ (x, y)``
    return float(t.a * x + t.b * y + t.c), float(t.d * x + t.e * y + t.f)
_SAMPLE_PIXELS = 2**20   # a level up to this size is sampled whole for the open-time warnings
_SAMPLE_WINDOW = 256


class Scene(ABC):
    """Base class; use ``open_scene``. Safe to read from several threads at once."""

    path: Path
    name: str
    width: int
    height: int
    count: int
    dtype: str
    is_complex: bool
    bands: Tuple[BandInfo, ...]
    quantity: str
    nodata: Optional[float]
    crs: Any = None
    transform: Affine = Affine.identity()
    gcps: tuple = ()
    gcps_crs: Any = None
    levels: Tuple[Level, ...]
    overview_source: str
    warnings: List[str]

    # ---- what each kind of scene provides -------------------------------------------------------
    @abstractmethod
    def _read_raw(self, band: int, window: Window, level: int) -> np.ndarray:
        """Values of an in-bounds window: float32 with NaN where invalid, or complex (NaN invalid)."""

    def close(self) -> None:
        self._closed = True

    # A no-op by design, not an abstract method: scenes without file overviews (in-memory arrays)
    # have nothing to re-discover; only the GDAL scene overrides it.
    def refresh_overviews(self) -> None:  # noqa: B027
        """Re-discover levels (after ``build_overviews``). Call when no reads are in flight."""

    # ---- reading ------------------------------------------------------------------------------
    def band_index(self, band: Union[int, str]) -> int:
        """0-based index from an int, a band name or a polarisation ("VV"), case-insensitive."""
        if isinstance(band, (int, np.integer)) and not isinstance(band, bool):
            if 0 <= int(band) < self.count:
                return int(band)
            raise SarlangError(f"band {int(band)} does not exist in {self.name}: it has {self.count} "
                               f"band(s), numbered 0 to {self.count - 1}")
        if not isinstance(band, str):
            raise SarlangError(f"band must be an index or a name, got {band!r}")
        key = band.strip().lower()
        for matches in ([b.index for b in self.bands if b.name.lower() == key],
                        [b.index for b in self.bands if (b.polarisation or "").lower() == key],
                        [i for i in range(self.count) if key in (f"band {i + 1}", f"b{i + 1}", str(i + 1))]):
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise SarlangError(f"band {band!r} is ambiguous in {self.name}: it matches "
                                   f"{', '.join(self.bands[i].name for i in matches)}; use an index")
        names = ", ".join(b.name + (f" ({b.polarisation})" if b.polarisation and b.polarisation != b.name else "")
                          for b in self.bands)
        raise SarlangError(f"no band {band!r} in {self.name}; its bands are: {names}")

    def _check_level(self, level: int) -> Level:
        if not isinstance(level, (int, np.integer)) or not 0 <= int(level) < len(self.levels):
            raise SarlangError(f"level {level!r} does not exist in {self.name}: levels are 0 to {len(self.levels) - 1}")
        return self.levels[int(level)]

    def read(self, band: Union[int, str] = 0, window: Optional[Window] = None, level: int = 0, *,
             complex_as: str = "intensity") -> np.ndarray:
        """A window (in ``level``'s pixel grid, inside it; None = whole level) as float32 (H, W)."""
        if getattr(self, "_closed", False):
            raise SarlangError(f"{self.name} is closed")
        if complex_as not in COMPLEX_AS:
            raise SarlangError(f"complex_as must be one of {COMPLEX_AS}, got {complex_as!r}")
        b = self.band_index(band)
        lv = self._check_level(level)
        window = Window.full(lv.width, lv.height) if window is None else window
        if not isinstance(window, Window):
            window = Window(*window)
        if not window.inside(lv.width, lv.height):
            raise SarlangError(f"window {window} is not inside level {lv.index} of {self.name} "
                               f"({lv.width} x {lv.height}); use read_padded for halos")
        if window.width == 0 or window.height == 0:
            return np.empty(window.shape, dtype=np.float32)
        raw = self._read_raw(b, window, lv.index)
        if np.iscomplexobj(raw):
            out = np.square(raw.real, dtype=np.float32)
            out += np.square(raw.imag, dtype=np.float32)
        else:
            out = np.asarray(raw, dtype=np.float32)
        if self.is_complex and complex_as == "amplitude":
            # overview levels of complex data already hold intensity: amplitude is its root
            np.sqrt(out, out=out)
        return out

    def read_padded(self, band: Union[int, str] = 0, window: Optional[Window] = None, level: int = 0, *,
                    complex_as: str = "intensity") -> np.ndarray:
        """Exactly ``window``'s shape; NaN where it falls outside the level (halos for filters)."""
        lv = self._check_level(level)
        if window is None:
            return self.read(band, None, level, complex_as=complex_as)
        if not isinstance(window, Window):
            window = Window(*window)
        inner = window.clip(lv.width, lv.height)
        if inner == window:
            return self.read(band, window, level, complex_as=complex_as)
        out = np.full(window.shape, np.nan, dtype=np.float32)
        if inner is not None:
            r0, c0 = inner.row_off - window.row_off, inner.col_off - window.col_off
            out[r0:r0 + inner.height, c0:c0 + inner.width] = self.read(band, inner, level, complex_as=complex_as)
        else:
            self.band_index(band)  # still report a bad band
        return out

    def level_for_zoom(self, screen_px_per_scene_px: float) -> int:
        """The coarsest level whose resolution is still >= what the screen shows."""
        s = float(screen_px_per_scene_px)
        if not s > 0:
            raise SarlangError(f"zoom must be > 0, got {screen_px_per_scene_px!r}")
        best = 0
        for lv in self.levels[1:]:
            # level pixels per full-resolution pixel, along the worse axis; tolerance for rounding
            res = min(lv.width / self.width, lv.height / self.height)
            if res >= s * (1 - 1e-9):
                best = lv.index
        return best

    # ---- georeferencing -----------------------------------------------------------------------
    @property
    def georeferenced(self) -> bool:
        return self.crs is not None or self.transform != Affine.identity() or bool(self.gcps)

    @property
    def crs_wkt(self) -> Optional[str]:
        crs = self.crs if self.crs is not None else self.gcps_crs
        return crs.to_wkt() if crs is not None else None

    def pixel_to_map(self, col: float, row: float) -> Tuple[float, float]:
        """Map coordinates of a full-resolution pixel position (pixel (i, j)'s centre is i+0.5, j+0.5)."""
        if self.gcps and self.transform == Affine.identity():
            xs, ys = self._gcp_transformer().xy([row], [col], offset="ul")
            return float(np.ravel(xs)[0]), float(np.ravel(ys)[0])
        return _apply(self.transform, col, row)

    def map_to_pixel(self, x: float, y: float) -> Tuple[float, float]:
        """Inverse of ``pixel_to_map`` (fractional col, row)."""
        if self.gcps and self.transform == Affine.identity():
            # rowcol floors by default; an identity op keeps the fractional position
            rows, cols = self._gcp_transformer().rowcol([x], [y], op=lambda v: v)
            return float(np.ravel(cols)[0]), float(np.ravel(rows)[0])
        return _apply(~self.transform, x, y)

    def pixel_to_lonlat(self, col: float, row: float) -> Optional[Tuple[float, float]]:
        """(lon, lat) in WGS 84 degrees, or None when the scene has no usable CRS."""
        crs = self.crs if self.crs is not None else self.gcps_crs
        if crs is None:
            return None
        from rasterio.warp import transform as warp_transform
        x, y = self.pixel_to_map(col, row)
        try:
            lon, lat = warp_transform(crs, "EPSG:4326", [x], [y])
        except Exception as exc:  # any PROJ failure means "no lon/lat here", never a crash in a status bar
            log.debug("no lon/lat for (%s, %s): %s", col, row, exc)
            return None
        lon, lat = float(lon[0]), float(lat[0])
        return (lon, lat) if math.isfinite(lon) and math.isfinite(lat) else None

    def _gcp_transformer(self):
        if getattr(self, "_gcp_tr", None) is None:
            from rasterio.transform import GCPTransformer
            self._gcp_tr = GCPTransformer(list(self.gcps))
        return self._gcp_tr

    # ---- description ---------------------------------------------------------------------------
    def info(self) -> Dict[str, Any]:
        """JSON-able summary. ``transform`` is in GDAL order: [x0, dx, row_rot, y0, col_rot, dy]."""
        crs = self.crs if self.crs is not None else self.gcps_crs
        crs_text = None
        if crs is not None:
            epsg = crs.to_epsg()
            crs_text = f"EPSG:{epsg}" if epsg else crs.to_wkt()
        return {
            "path": str(self.path), "name": self.name, "width": self.width, "height": self.height,
            "count": self.count, "dtype": self.dtype, "is_complex": self.is_complex,
            "crs": crs_text, "transform": [float(v) for v in self.transform.to_gdal()],
            "gcps": len(self.gcps), "nodata": self.nodata,
            "overviews": [lv.factor for lv in self.levels[1:]],
            "levels": [[lv.factor, lv.width, lv.height] for lv in self.levels],
            "bands": [{"index": b.index, "name": b.name, "description": b.description,
                       "polarisation": b.polarisation} for b in self.bands],
            "quantity": self.quantity, "georeferenced": self.georeferenced,
            "overview_source": self.overview_source, "warnings": list(self.warnings),
        }

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.name} {self.width}x{self.height}x{self.count} {self.dtype} "
                f"levels={[lv.factor for lv in self.levels]} ({self.overview_source})>")

    def db_warnings(self) -> List[str]:
        """The open-time warnings saying the values may already be decibels (a name, negative values)."""
        return [w for w in self.warnings if any(mark in w for mark in DB_MARKS)]

    # ---- open-time checks ----------------------------------------------------------------------
    def _sample_level(self) -> int:
        """The coarsest level that is stored (not computed in memory), for cheap sampling."""
        return 0 if self.overview_source in ("memory", "none") else len(self.levels) - 1

    def _sample_windows(self, lv: Level) -> Sequence[Window]:
        if lv.width * lv.height <= _SAMPLE_PIXELS:
            return [Window.full(lv.width, lv.height)]
        wins = []
        for fy in (0.1, 0.5, 0.9):
            for fx in (0.1, 0.5, 0.9):
                w, h = min(_SAMPLE_WINDOW, lv.width), min(_SAMPLE_WINDOW, lv.height)
                wins.append(Window(int((lv.width - w) * fx), int((lv.height - h) * fy), w, h))
        return wins

    def _collect_warnings(self) -> None:
        """Human warnings from a cheap sample (coarsest stored level, or a few windows)."""
        lv = self.levels[self._sample_level()]
        wins = self._sample_windows(lv)
        whole = len(wins) == 1
        where = ("" if lv.index == 0 else " of the overview") if whole else " in the sample"
        for b in self.bands:
            values = np.concatenate([self.read(b.index, w, lv.index).ravel() for w in wins])
            valid = values[~np.isnan(values)]
            if valid.size == 0:
                self.warnings.append(f"band {b.name}: all pixels{where} are nodata or invalid")
                continue
            if not self.is_complex and not is_db(b.description):
                vmin = float(valid.min())
                if vmin < 0:
                    self.warnings.append(f"band {b.name}: negative values{where} (min {vmin:g}); SAR "
                                         "intensity and amplitude are never negative (dB or a difference image?)")
            if valid.size < values.size and whole and lv.index == 0 and valid.size < 0.01 * values.size:
                self.warnings.append(f"band {b.name}: {100 * (1 - valid.size / values.size):.1f}% of pixels are nodata")
        if self.overview_source == "none" and max(self.width, self.height) > 256:
            self.warnings.append(f"no overviews ({self.width} x {self.height} pixels): zoomed-out views will be "
                                 "slow; build them (into the cache, the file is not modified)")
