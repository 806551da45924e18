"""Scenes held as numpy arrays: ``.npy`` files (memory-mapped) and PNG/JPEG chips (decoded).

These have no georeferencing (identity transform, no CRS) and no stored overviews: levels are
computed in memory, by NaN-aware block averaging, the first time one is read
(``overview_source == "memory"``).

``.npy`` layouts:
  * (H, W) real or complex: one band;
  * (B, H, W) with B <= 64 and B smaller than H and W: B bands;
  * (H, W, 2) real: one complex band of I/Q pairs ([..., 0] = I, [..., 1] = Q, the
    deepdespeckling/MERLIN convention); ``dtype`` reports the complex type (float32 I/Q ->
    "complex64", int16 I/Q -> "complex_int16");
  * (H, W, B) with B <= 64 otherwise: B bands, channels last.
PNG/JPEG: grayscale (L, I;16, I, F) is one band; an RGB(A)/palette image whose colour channels
are equal (JPEG: within 2 grey levels) is one band; alpha 0 marks invalid pixels; a real colour
image is refused (UnsupportedSceneError). Chips are decoded on open: PNG and JPEG cannot be read
by window, so large images belong in a tiled GeoTIFF.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from affine import Affine

from ..errors import SarlangError, SceneError, UnsupportedSceneError
from .base import Scene
from .meta import Level, Window, guess_quantity, make_bands
from .pyramid import MemoryPyramid, default_factors

MAX_BANDS = 64
ARRAY_PYRAMID_MAX_PIXELS = 64 * 2**20
_IQ_NAMES = {"float32": "complex64", "float64": "complex128", "int16": "complex_int16",
             "int32": "complex_int32", "float16": "complex64"}


class ArrayScene(Scene):
    def __init__(self, path: Path, data: np.ndarray, *, mask: Optional[np.ndarray] = None,
                 descriptions=(), source_note: str = ""):
        self.path, self.name = path, path.name
        self.warnings, self._closed = [], False
        self.crs, self.transform, self.nodata = None, Affine.identity(), None
        if data.dtype.kind not in "uifc" or data.size == 0:
            raise UnsupportedSceneError(path, f"holds a {data.dtype} array of shape {data.shape}; a scene "
                                        "needs a non-empty numeric array")
        self._mask = mask  # 2-D bool, True = valid (PNG alpha)
        if data.ndim == 2:
            data = data[np.newaxis]  # a view: memory-mapped data stays lazy
            self._layout, self.dtype = "bhw", str(data.dtype)
        else:
            self._layout, self.dtype = self._layout_of(path, data)
        self._data: Optional[np.ndarray] = data   # None once closed
        if self._layout == "iq":
            self.height, self.width, self.count = data.shape[0], data.shape[1], 1
        elif self._layout == "hwb":
            self.height, self.width, self.count = data.shape
        else:
            self.count, self.height, self.width = data.shape
        self.is_complex = self.dtype.startswith("complex")
        descriptions = list(descriptions) + [""] * (self.count - len(descriptions))
        self.bands = make_bands(descriptions[:self.count], [{}] * self.count, {}, self.name)
        self.quantity, notes = guess_quantity(self.bands, [{}] * self.count, {}, self.is_complex)
        self.warnings.extend(notes)
        if source_note:
            self.warnings.append(source_note)
        # in-memory levels cost ~1/3 of the band in float32: only for arrays of moderate size
        big = self.width * self.height > ARRAY_PYRAMID_MAX_PIXELS
        factors = () if big else default_factors(self.width, self.height)
        self._pyramid = MemoryPyramid(self._read_full_rows, self.width, self.height, factors)
        self.levels = (Level(0, 1, self.width, self.height),) + tuple(
            Level(k + 1, f, -(-self.width // f), -(-self.height // f)) for k, f in enumerate(factors))
        self.overview_source = "memory" if factors else "none"
        self._collect_warnings()
        self.warnings = [w for w in self.warnings if not w.startswith("no overviews")]
        if big:
            self.warnings.append(f"no overviews ({self.width} x {self.height} pixels is too large to keep levels "
                                 "in memory): zoomed-out views will be slow; convert it to a tiled GeoTIFF")

    @staticmethod
    def _layout_of(path: Path, data: np.ndarray):
        if data.ndim != 3:
            raise UnsupportedSceneError(path, f"holds a {data.ndim}-D array {data.shape}; expected (H, W), "
                                        "(bands, H, W), (H, W, 2) I/Q or (H, W, bands)")
        a, h, b = data.shape
        if a <= MAX_BANDS and a < min(h, b):
            return "bhw", str(data.dtype)
        if b == 2 and data.dtype.kind in "if":
            return "iq", _IQ_NAMES.get(str(data.dtype), "complex64")
        if b <= MAX_BANDS:
            return "hwb", str(data.dtype)
        raise UnsupportedSceneError(path, f"array shape {data.shape} has no axis that looks like bands")

    def _read_full_rows(self, band: int, row: int, nrows: int) -> np.ndarray:
        return self.read(band, Window(0, row, self.width, nrows), 0)

    def _read_raw(self, band: int, window: Window, level: int) -> np.ndarray:
        if level > 0:
            return np.array(self._pyramid.level(band, level)[window.slices()])
        rs, cs = window.slices()
        data = self._data
        if data is None:   # closed while this read was on its way
            raise SarlangError(f"{self.name} is closed")
        try:
            if self._layout == "iq":
                iq = np.asarray(data[rs, cs, :], dtype=np.float32)
                raw = iq[..., 0] + np.complex64(1j) * iq[..., 1]
            elif self._layout == "hwb":
                raw = np.asarray(data[rs, cs, band])
            else:
                raw = np.asarray(data[band, rs, cs])
        except (OSError, ValueError) as exc:  # e.g. a memory-mapped file truncated after opening
            raise SceneError(self.path, f"cannot read pixel data: {exc}") from None
        if np.iscomplexobj(raw):
            out = raw.astype(np.complex64)
            out[~(np.isfinite(out.real) & np.isfinite(out.imag))] = np.nan
        else:
            out = raw.astype(np.float32)
            if raw.dtype.kind == "f":
                out[~np.isfinite(out)] = np.nan
        if self._mask is not None:
            out[~self._mask[rs, cs]] = np.nan
        return out

    def close(self) -> None:
        self._closed = True
        self._data = None


def open_npy(path: Path) -> ArrayScene:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise SceneError(path, f"not a readable .npy array ({' '.join(str(exc).split())})") from None
    if not isinstance(data, np.ndarray):
        raise UnsupportedSceneError(path, "holds several arrays (.npz); save one array per .npy file")
    return ArrayScene(path, data)


def open_image(path: Path) -> ArrayScene:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
                img = img.convert("RGBA" if "A" in mode or "transparency" in img.info else "RGB")
            arr = np.asarray(img)
    except Image.DecompressionBombError as exc:
        raise SceneError(path, f"image too large to decode as {path.suffix} ({exc.args[0].split(' pixels')[0]} "
                         "pixels); convert it to a tiled GeoTIFF") from None
    except UnidentifiedImageError:
        raise SceneError(path, f"not a readable {path.suffix.lstrip('.').upper()} image") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = " ".join(str(exc).split())
        raise SceneError(path, f"cannot decode the image (truncated or corrupt?): {reason}") from None
    mask = None
    if arr.ndim == 3:
        nchan = arr.shape[2]
        if nchan in (2, 4):  # LA / RGBA: alpha 0 = invalid
            mask = arr[..., -1] > 0
            arr = arr[..., :-1]
        if arr.shape[2] >= 3:
            tol = 2 if path.suffix.lower() in (".jpg", ".jpeg") else 0
            c = arr.astype(np.int32)
            diff = max(int(np.abs(c[..., 0] - c[..., 1]).max()), int(np.abs(c[..., 1] - c[..., 2]).max()))
            if diff > tol:
                raise UnsupportedSceneError(path, "is an RGB colour image, not SAR data (its colour channels differ); "
                                            "open a grayscale chip or the radar product")
            arr = c.mean(axis=2).round().astype(np.uint8) if tol else arr[..., 0]
        else:
            arr = arr[..., 0]
        if mask is not None and mask.all():
            mask = None
    return ArrayScene(path, np.ascontiguousarray(arr), mask=mask)
