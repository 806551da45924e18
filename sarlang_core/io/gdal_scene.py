"""Scenes read through GDAL (rasterio): GeoTIFF and any other raster GDAL opens.

rasterio datasets are not thread-safe, so every thread gets its own handle per (file, overview
level), opened lazily; ``close`` closes them all. A read at an overview level is an exact read of
that overview (``rasterio.open(..., overview_level=k)``), never a resampling.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window as RioWindow

from ..errors import SarlangError, SceneError, UnsupportedSceneError
from .base import Scene
from .cache import cache_vrt_path
from .meta import Level, Window, guess_quantity, make_bands
from .pyramid import MemoryPyramid, default_factors

try:  # GDAL errors surface as CPLE_* classes; they are not all RasterioError subclasses
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover - rasterio internals moved
    CPLE_BaseError = RasterioError

GDAL_ERRORS = (RasterioError, CPLE_BaseError, OSError)
MEMORY_PYRAMID_MAX_PIXELS = 16 * 2**20  # without overviews, smaller scenes get in-memory levels

# rasterio warns on every open of a file without a geotransform (PNG chips, arrays): noise here.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)


def gdal_message(exc: BaseException) -> str:
    """GDAL's message on one line."""
    # rasterio wraps the real cause ("TIFFReadEncodedTile ... Read error") in "Read failed. See
    # previous exception for details": report the cause
    seen = 0
    while "previous exception" in str(exc) and seen < 5:
        cause = exc.__cause__ or exc.__context__
        if cause is None:
            break
        exc, seen = cause, seen + 1
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text.rstrip(".")


class Handles:
    """One rasterio dataset per (thread, path, overview level)."""

    def __init__(self, scene_path: Path):
        self._scene_path = scene_path
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self, key: Tuple[str, Optional[int]]):
        cache: Optional[Dict] = getattr(self._local, "datasets", None)
        if cache is None:
            cache = self._local.datasets = {}
        ds = cache.get(key)
        if ds is None:
            if self._closed:
                raise SarlangError(f"{self._scene_path.name} is closed")
            path, ovl = key
            kwargs = {} if ovl is None else {"overview_level": ovl}
            try:
                ds = rasterio.open(path, sharing=False, **kwargs)
            except GDAL_ERRORS as exc:
                raise SceneError(self._scene_path, f"cannot open: {gdal_message(exc)}") from None
            with self._lock:
                if self._closed:
                    ds.close()
                    raise SarlangError(f"{self._scene_path.name} is closed")
                self._all.append(ds)
            cache[key] = ds
        return ds

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for ds in self._all:
                ds.close()
            self._all.clear()


class GdalScene(Scene):
    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self.warnings = []
        self._closed = False
        self._handles = Handles(path)
        try:
            self._init()
        except BaseException:
            self._handles.close()
            raise

    def _init(self) -> None:
        ds = self._handles.get((str(self.path), None))
        if ds.count == 0:
            subs = list(ds.subdatasets)
            hint = f"; it holds {len(subs)} sub-dataset(s), open one of them, e.g. {subs[0]}" if subs else ""
            raise UnsupportedSceneError(self.path, f"has no raster bands{hint}")
        interp = list(ds.colorinterp)
        if ds.count in (3, 4) and all(t == "uint8" for t in ds.dtypes) and \
                interp[:3] == [ColorInterp.red, ColorInterp.green, ColorInterp.blue]:
            raise UnsupportedSceneError(self.path, f"is an RGB{'A' if ds.count == 4 else ''} colour image "
                                        "(8-bit red/green/blue bands), not SAR data; open the radar product itself")
        self._bands_gdal = [i + 1 for i, ci in enumerate(interp) if ci != ColorInterp.alpha] or [1]
        alpha = [i + 1 for i, ci in enumerate(interp) if ci == ColorInterp.alpha]
        first = self._bands_gdal[0]
        self.width, self.height, self.count = ds.width, ds.height, len(self._bands_gdal)
        self.dtype = ds.dtypes[first - 1]
        self.is_complex = self.dtype.startswith("complex")
        nd = ds.nodatavals[first - 1]
        self.nodata = None if nd is None else float(nd)
        # per-dataset masks (internal .msk, alpha) mark invalid pixels beyond nodata
        self._masked = bool(alpha) or MaskFlags.per_dataset in ds.mask_flag_enums[first - 1] and \
            MaskFlags.nodata not in ds.mask_flag_enums[first - 1]
        self.crs = ds.crs if ds.crs else None
        self.transform = ds.transform
        if ds.transform.is_identity:
            gcps, gcps_crs = ds.gcps
            if gcps:
                self.gcps, self.gcps_crs = tuple(gcps), gcps_crs
        tags = ds.tags()
        band_tags = [ds.tags(b) for b in self._bands_gdal]
        self.bands = make_bands([ds.descriptions[b - 1] for b in self._bands_gdal], band_tags, tags, self.name)
        self.quantity, notes = guess_quantity(self.bands, band_tags, tags, self.is_complex)
        self.warnings.extend(notes)
        self._discover_levels()
        self._collect_warnings()

    # ---- levels -------------------------------------------------------------------------------
    def _discover_levels(self) -> None:
        """Overview priority: a cache entry (built for this exact file version) > the file's own
        overviews (internal, else a .ovr sidecar) > in-memory levels (small scenes) > none."""
        ds = self._handles.get((str(self.path), None))
        keys: List[Tuple[str, Optional[int]]] = [(str(self.path), None)]
        band_maps: List[List[int]] = [self._bands_gdal]
        levels = [Level(0, 1, self.width, self.height)]
        pyramid = None
        source = None
        vrt = cache_vrt_path(self.path)
        if vrt.exists():
            try:
                with rasterio.open(vrt) as v:
                    n = len(v.overviews(1))
                for k in range(n):
                    h = self._handles.get((str(vrt), k))
                    keys.append((str(vrt), k))
                    band_maps.append(list(range(1, self.count + 1)))
                    levels.append(Level(k + 1, max(1, round(self.width / h.width)), h.width, h.height))
                source = "cache"
            except (SarlangError, *GDAL_ERRORS) as exc:  # a damaged cache entry must not block the file
                del keys[1:], band_maps[1:], levels[1:]
                self.warnings.append(f"ignoring a damaged overview cache entry {vrt.name}: {exc}")
        factors = ds.overviews(self._bands_gdal[0]) if source is None else []
        for k in range(len(factors)):
            h = self._handles.get((str(self.path), k))
            keys.append((str(self.path), k))
            band_maps.append(self._bands_gdal)
            levels.append(Level(k + 1, max(1, round(self.width / h.width)), h.width, h.height))
        if factors:
            source = "sidecar" if any(str(f).lower().endswith(".ovr") for f in ds.files) else "internal"
        if source is None:
            small = self.width * self.height <= MEMORY_PYRAMID_MAX_PIXELS
            fs = default_factors(self.width, self.height) if small else ()
            source = "memory" if fs else "none"
            if fs:
                pyramid = MemoryPyramid(self._read_full_rows, self.width, self.height, fs)
                levels += [Level(k + 1, f, -(-self.width // f), -(-self.height // f)) for k, f in enumerate(fs)]
        if self.is_complex and source in ("internal", "sidecar"):
            self.warnings.append("the file's own overviews of complex data average complex values "
                                 "(coherently), so they are darker than a multilook; build cached overviews")
        # assigned together at the end (refresh_overviews replaces them)
        self._level_keys, self._level_bands, self._pyramid = keys, band_maps, pyramid
        self.overview_source, self.levels = source, tuple(levels)

    def refresh_overviews(self) -> None:
        # old handles stay open (another thread may still use one) until close()
        self.warnings = [w for w in self.warnings if not w.startswith("no overviews")]
        self._discover_levels()

    def _read_full_rows(self, band: int, row: int, nrows: int) -> np.ndarray:
        return self.read(band, Window(0, row, self.width, nrows), 0)

    # ---- reading ------------------------------------------------------------------------------
    def _read_raw(self, band: int, window: Window, level: int) -> np.ndarray:
        if self._pyramid is not None and level > 0:
            return np.array(self._pyramid.level(band, level)[window.slices()])
        key = self._level_keys[level]
        gb = self._level_bands[level][band]
        rw = RioWindow(window.col_off, window.row_off, window.width, window.height)
        try:
            ds = self._handles.get(key)
            raw = ds.read(gb, window=rw)
            mask = ds.read_masks(gb, window=rw) if self._masked and level == 0 else None
            nodata = ds.nodatavals[gb - 1]
        except GDAL_ERRORS as exc:
            where = "" if level == 0 else f" at overview level {level}"
            name = self.bands[band].name
            label = name if name == f"band {band + 1}" else f"band {band + 1} ({name})"
            raise SceneError(self.path, f"cannot read {label}{where} "
                             f"(truncated or corrupt file?): {gdal_message(exc)}") from None
        if np.iscomplexobj(raw):
            out = raw.astype(np.complex64)
            bad = ~(np.isfinite(out.real) & np.isfinite(out.imag))
            if nodata is not None and not np.isnan(nodata):
                bad |= raw == nodata
            out[bad] = np.nan
        else:
            out = raw.astype(np.float32)
            if nodata is not None and not np.isnan(nodata):
                out[raw == nodata] = np.nan  # compare in the source type: no float rounding
            if raw.dtype.kind == "f":
                out[~np.isfinite(out)] = np.nan
        if mask is not None:
            out[mask == 0] = np.nan
        return out

    def close(self) -> None:
        self._closed = True
        self._handles.close()
