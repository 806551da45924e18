"""SAR-like test data: reflectivity maps, speckle, complex SLC samples and GeoTIFF writing.

Used by ``scripts/make_sample_scene.py`` and by tests across the project::

    from sarlang_core import synthetic as syn
    r = syn.reflectivity_map(512, 512, seed=1)           # float32 linear intensity (sigma0-like)
    img = syn.speckle(r, looks=1, seed=2)                 # r times unit-mean gamma speckle
    syn.write_scene(tmp_path / "s.tif", np.stack([img, img / 5]), band_descriptions=("VV", "VH"))

Everything is deterministic for a given seed. ``reflectivity_scene`` also returns the class map
and the point-target positions (ground truth for detection or filter tests); the same seed gives
the same geometry for every polarisation, only the levels differ (``LEVELS``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

SEA, FIELD, FOREST, URBAN, ROAD = 0, 1, 2, 3, 4
CLASS_NAMES = {SEA: "sea", FIELD: "field", FOREST: "forest", URBAN: "urban", ROAD: "road"}

# Linear intensity ranges (lo, hi) per class; a region's level is lo * (hi/lo)**u with one u per
# region shared by all polarisations. Roughly C-band sigma0: VV sea ~ -20 dB, fields -15..-7 dB,
# urban 0..+5 dB; cross-pol (VH) much darker over sea and bare soil, volume scattering in forest.
LEVELS: Dict[str, Dict[str, Tuple[float, float]]] = {
    "VV": {"sea": (0.006, 0.02), "field": (0.03, 0.2), "forest": (0.1, 0.16), "urban": (0.1, 2.0),
           "road": (0.002, 0.004), "ship": (30.0, 400.0), "reflector": (300.0, 1500.0), "pier": (1.0, 3.0)},
    "VH": {"sea": (0.0004, 0.0012), "field": (0.004, 0.04), "forest": (0.03, 0.05), "urban": (0.02, 0.3),
           "road": (0.0004, 0.0008), "ship": (3.0, 40.0), "reflector": (2.0, 10.0), "pier": (0.1, 0.3)},
}
DEFAULT_CRS = "EPSG:32631"
DEFAULT_ORIGIN = (500000.0, 5700000.0)  # UTM 31N, ~51.4 N 3.0 E
DEFAULT_PIXEL = 10.0


@dataclass(frozen=True)
class SyntheticReflectivity:
    reflectivity: np.ndarray   # (H, W) float32 linear intensity, > 0
    labels: np.ndarray         # (H, W) uint8 class codes (SEA, FIELD, FOREST, URBAN, ROAD)
    targets: Tuple[Tuple[int, int, str], ...]  # (row, col, "ship" | "reflector") point targets


def _level(levels: Mapping[str, Tuple[float, float]], kind: str, u) -> np.ndarray:
    lo, hi = levels[kind]
    return (lo * (hi / lo) ** np.asarray(u)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """Zero-mean smooth noise of unit std with features ~``scale`` pixels (cheap: coarse grid, zoomed)."""
    ch, cw = max(2, int(h / scale) + 2), max(2, int(w / scale) + 2)
    coarse = rng.standard_normal((ch, cw)).astype(np.float32)
    fine = ndimage.zoom(coarse, (h / (ch - 1), w / (cw - 1)), order=1)[:h, :w]
    fine = np.pad(fine, ((0, h - fine.shape[0]), (0, w - fine.shape[1])), mode="edge")
    return (fine - fine.mean()) / (fine.std() + 1e-6)


def reflectivity_scene(h: int, w: int, seed: int = 0, *, pol: str = "VV",
                       levels: Optional[Mapping[str, Tuple[float, float]]] = None) -> SyntheticReflectivity:
    """A coastal scene: sea (left) with ships, a wavy coastline, fields with texture, forest,
    a town on the coast, roads and a pier, and corner reflectors on land."""
    lv = dict(levels or LEVELS[pol.upper()])
    rng = np.random.default_rng(seed)
    rows = np.arange(h, dtype=np.float32)[:, None]
    cols = np.arange(w, dtype=np.float32)[None, :]

    # coastline: sea where col < coast(row); sinusoids plus a smoothed random walk
    walk = ndimage.gaussian_filter1d(np.cumsum(rng.standard_normal(h)), max(1.0, h / 40)) * (w / 400)
    phase = rng.uniform(0, 2 * np.pi, 2)
    coast = (0.28 * w + 0.05 * w * np.sin(2 * np.pi * rows[:, 0] / max(h, 1) * 1.5 + phase[0])
             + 0.02 * w * np.sin(2 * np.pi * rows[:, 0] / max(h, 1) * 6 + phase[1]) + walk)
    sea = cols < coast[:, None]

    # land: Voronoi fields (a fifth of them forest), each with its own level and furrow texture
    n_fields = max(4, int(h * w / 90**2))
    seeds = np.column_stack([rng.uniform(0, h, n_fields), rng.uniform(0, w, n_fields)])
    yy, xx = np.mgrid[0:h, 0:w]
    # cells on a half-resolution grid (4x fewer queries; the 2-px steps vanish under speckle)
    gy, gx = np.mgrid[0:h:2, 0:w:2]
    _, cell = cKDTree(seeds).query(np.column_stack([gy.ravel(), gx.ravel()]).astype(np.float32))
    cell = np.repeat(np.repeat(cell.reshape(gy.shape), 2, axis=0), 2, axis=1)[:h, :w]
    u_field = rng.uniform(0, 1, n_fields)
    is_forest = rng.uniform(0, 1, n_fields) < 0.2
    angle = rng.uniform(0, np.pi, n_fields)
    period = rng.uniform(4, 12, n_fields)
    furrow = rng.uniform(0, 0.35, n_fields) * ~is_forest
    labels = np.where(is_forest[cell], FOREST, FIELD).astype(np.uint8)
    base = np.where(is_forest[cell], _level(lv, "forest", u_field)[cell], _level(lv, "field", u_field)[cell])
    phase_px = (xx * np.cos(angle)[cell] + yy * np.sin(angle)[cell]) / period[cell]
    refl = base * (1 + furrow[cell] * np.sin(2 * np.pi * phase_px)).astype(np.float32)
    refl *= np.exp(0.25 * _smooth_noise(rng, h, w, max(4.0, min(h, w) / 16)))

    # town on the coast: blocks of buildings (bright, varied) separated by dark streets
    cy = rng.uniform(0.3, 0.7) * h
    cx = float(np.interp(cy, np.arange(h), coast)) + 0.12 * w
    radius = 0.11 * min(h, w)
    dist = np.sqrt((rows - cy) ** 2 + (cols - cx) ** 2) / radius
    town = (dist + 0.3 * _smooth_noise(rng, h, w, max(4.0, radius / 2)) < 1) & ~sea
    block = max(3, int(min(h, w) / 80))
    brow, bcol = (rows // block).astype(int), (cols // block).astype(int)
    nb = (int(h // block) + 2, int(w // block) + 2)
    u_block = rng.uniform(0, 1, nb) ** 1.5  # most blocks moderate, a few very bright
    street = (yy % block == 0) | (xx % block == 0)
    urban_val = _level(lv, "urban", u_block[brow, bcol])
    # double bounce: the wall facing the sensor (a block's first column) is much brighter
    wall = (xx % block == 1) & (rng.uniform(0, 1, nb) < 0.6)[brow, bcol]
    urban_val = np.where(wall, urban_val * 6, urban_val)
    urban_val = np.where(street, _level(lv, "road", 0.5), urban_val)
    refl = np.where(town, urban_val, refl)
    labels[town & ~street] = URBAN

    # roads: a few straight dark lines across the land, 1-3 px wide
    for _ in range(max(1, min(h, w) // 300)):
        a = rng.uniform(0, np.pi)
        r0 = rng.uniform(0.2, 0.8) * h * np.cos(a) + rng.uniform(0.4, 0.9) * w * np.sin(a)
        width = rng.uniform(0.8, 1.6)
        road = (np.abs(yy * np.cos(a) + xx * np.sin(a) - r0) < width) & ~sea & ~town
        refl[road] = _level(lv, "road", rng.uniform())
        labels[road] = ROAD

    # sea: dark, with a wind gradient and slow modulation
    wind = 1 + 0.5 * (rows / max(h, 1)) + 0.2 * _smooth_noise(rng, h, w, max(8.0, min(h, w) / 8))
    refl = np.where(sea, _level(lv, "sea", 0.5) * np.clip(wind, 0.3, None), refl)
    labels[sea] = SEA

    # a pier from the town into the sea (bright linear feature)
    prow = int(np.clip(cy, 0, h - 1))
    pier_cols = slice(max(0, int(coast[prow] - 0.08 * w)), max(0, int(coast[prow])) + 1)
    refl[max(0, prow - 1):prow + 1, pier_cols] = _level(lv, "pier", 0.5)

    # point targets: ships (small blobs) at sea, corner reflectors (single pixels) on fields
    targets = []
    for kind, n, where in (("ship", max(1, h * w // 40000), sea),
                           ("reflector", max(1, h * w // 150000), labels == FIELD)):
        cand = np.flatnonzero(where[2:-2, 2:-2]) if h > 4 and w > 4 else np.array([], dtype=int)
        for idx in rng.choice(cand, size=min(n, cand.size), replace=False) if cand.size else []:
            r, c = divmod(int(idx), w - 4)
            r, c = r + 2, c + 2
            peak = float(_level(lv, kind, rng.uniform()))
            _paint_target(refl, r, c, peak, blob=(kind == "ship"))
            targets.append((r, c, kind))
    return SyntheticReflectivity(np.ascontiguousarray(refl, dtype=np.float32), labels, tuple(targets))


def _paint_target(refl: np.ndarray, r: int, c: int, peak: float, blob: bool) -> None:
    """A bright point with the cross-shaped sidelobes of a SAR impulse response."""
    h, w = refl.shape
    for d in range(1, 6):  # sidelobes ~ -13 dB then decaying, along range and azimuth
        s = peak * 0.05 / d
        for rr, cc in ((r + d, c), (r - d, c), (r, c + d), (r, c - d)):
            if 0 <= rr < h and 0 <= cc < w:
                refl[rr, cc] = max(refl[rr, cc], s)
    refl[r, c] = peak
    if blob:  # a ship is a few pixels long
        for dc in (-1, 1):
            if 0 <= c + dc < w:
                refl[r, c + dc] = max(refl[r, c + dc], peak * 0.5)


def reflectivity_map(h: int, w: int, seed: int = 0, *, pol: str = "VV") -> np.ndarray:
    """(H, W) float32 linear intensity of a coastal scene (see ``reflectivity_scene``)."""
    return reflectivity_scene(h, w, seed, pol=pol).reflectivity


def gamma_noise(shape: Sequence[int], looks: float = 1.0, seed: int = 0) -> np.ndarray:
    """Unit-mean gamma speckle of ``looks`` looks (shape=L, scale=1/L): variance 1/L."""
    if not looks > 0:
        raise ValueError(f"looks must be > 0, got {looks}")
    rng = np.random.default_rng(seed)
    return rng.gamma(looks, 1.0 / looks, size=tuple(shape)).astype(np.float32)


def speckle(reflectivity: np.ndarray, looks: float = 1.0, seed: int = 0) -> np.ndarray:
    """Speckled intensity: ``reflectivity`` times unit-mean gamma noise of ``looks`` looks
    (NaN stays NaN). For amplitude take the square root of the result."""
    r = np.asarray(reflectivity, dtype=np.float32)
    return r * gamma_noise(r.shape, looks, seed)


def complex_slc(reflectivity: np.ndarray, seed: int = 0) -> np.ndarray:
    """Single-look complex samples: circular Gaussian with E[I^2 + Q^2] = reflectivity (complex64)."""
    r = np.asarray(reflectivity, dtype=np.float32)
    rng = np.random.default_rng(seed)
    s = np.sqrt(r / 2)
    real = (rng.standard_normal(r.shape) * s).astype(np.float32)
    out = real + 1j * (rng.standard_normal(r.shape) * s).astype(np.float32)
    return out.astype(np.complex64)


def default_transform(pixel: float = DEFAULT_PIXEL, origin: Tuple[float, float] = DEFAULT_ORIGIN):
    """North-up transform with square ``pixel`` metres from the top-left corner ``origin``."""
    from affine import Affine
    return Affine(pixel, 0.0, origin[0], 0.0, -pixel, origin[1])


def write_scene(path: Union[str, os.PathLike], bands: np.ndarray, *, crs: Optional[str] = DEFAULT_CRS,
                transform: Any = None, nodata: Optional[float] = None, band_descriptions: Sequence[str] = (),
                tags: Optional[Mapping[str, Any]] = None, band_tags: Sequence[Mapping[str, Any]] = (),
                tiled: bool = True, blocksize: int = 256, overviews: Sequence[int] = (2, 4, 8),
                resampling: str = "average", dtype: Optional[str] = None, compress: Optional[str] = "deflate",
                predictor: Optional[int] = None) -> Path:
    """Write ``bands`` ((H, W) or (B, H, W)) as a GeoTIFF, directly (tests; not atomic).

    ``crs=None`` and ``transform=None`` give a non-georeferenced file; with a CRS and no transform,
    10 m pixels from ``DEFAULT_ORIGIN``. ``dtype`` may be any rasterio type, including
    "complex_int16" and "complex64" (pass complex data). Overview factors that would be smaller
    than a pixel are skipped; ``overviews=()`` writes none. ``predictor`` defaults to 3 for float,
    2 for integer data (none for complex) when compressing.
    """
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.errors import NotGeoreferencedWarning

    arr = np.asarray(bands)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim != 3:
        raise ValueError(f"bands must be (H, W) or (B, H, W), got shape {arr.shape}")
    dtype = dtype or ("complex64" if arr.dtype.kind == "c" else str(arr.dtype))
    count, h, w = arr.shape
    if transform is None and crs is not None:
        transform = default_transform()
    opts: Dict[str, Any] = {}
    if tiled:
        opts.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    if compress and compress.lower() != "none":
        opts["compress"] = compress
        if predictor is None and not dtype.startswith("complex"):
            predictor = 3 if np.dtype(dtype).kind == "f" else 2
        if predictor:
            opts["predictor"] = predictor
    path = Path(path)
    with warnings.catch_warnings():  # a file without georeferencing was asked for: no warning
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=count, dtype=dtype, crs=crs,
                           transform=transform, nodata=nodata, **opts) as dst:
            dst.write(arr if arr.dtype.kind == "c" or dtype.startswith("complex") else arr.astype(dtype, copy=False))
            for i, desc in enumerate(band_descriptions):
                dst.set_band_description(i + 1, str(desc))
            if tags:
                dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
            for i, bt in enumerate(band_tags):
                dst.update_tags(i + 1, **{str(k): str(v) for k, v in bt.items()})
            factors = [int(f) for f in overviews if max(w, h) // int(f) >= 1]
            if factors:
                dst.build_overviews(factors, Resampling[resampling])
                dst.update_tags(ns="rio_overview", resampling=resampling)
    return path
