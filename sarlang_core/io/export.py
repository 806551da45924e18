"""Writing GeoTIFFs safely: window by window, to a temp file renamed only on success."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window as RioWindow

from ..atomic import create_temp, fsync_path, remove_temp
from ..errors import CancelledError, ExportError
from ..progress import CancelToken, ProgressCallback, check, report
from .gdal_scene import GDAL_ERRORS, gdal_message
from .meta import Window
from .write_checks import WriteFailedError, gdal_failures, verify_geotiff

_PROFILE_KEYS = ("width", "height", "count", "dtype", "crs", "transform", "nodata")


class OutputExistsError(ExportError):
    """The output exists and replacing it was not allowed; ``hint`` says how to allow it (the CLI
    names its flag, the GUI asks)."""

    def __init__(self, path: Path, hint: str = "allow overwriting to replace it"):
        self.path = path
        super().__init__(f"{path}: already exists ({hint})")


def check_output_path(path: Union[str, os.PathLike], forbid: Iterable[Union[str, os.PathLike]] = (),
                      overwrite: bool = False) -> Path:
    """The absolute output path, or ExportError when writing there would lose data."""
    out = Path(path).expanduser().absolute()
    if not out.parent.is_dir():
        raise ExportError(f"{out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise ExportError(f"{out}: is a folder; give a file name")
    for f in forbid:
        fp = Path(f).expanduser()
        same = out.resolve() == fp.resolve()
        if not same and out.exists() and fp.exists():
            same = os.path.samefile(out, fp)
        if same:
            raise ExportError(f"{out}: refusing to overwrite the input {fp}; choose another output file")
    if out.exists() and not overwrite:
        raise OutputExistsError(out)
    return out


def remove_quietly(*paths: Union[str, Path]) -> None:
    for p in paths:
        remove_temp(p)


def make_temp(out: Path) -> Path:
    """A new temporary file beside ``out`` (see ``atomic``); ExportError naming ``out`` when the
    folder is not writable."""
    try:
        return create_temp(out)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write in {out.parent}: {exc.strerror or exc}") from None


def why(exc: BaseException, tmp: Path, out: Path) -> str:
    """The reason of a failed write on one line, naming the output rather than the temporary,
    and saying so when the disk is full (GDAL's own words are "Write error at scanline")."""
    if isinstance(exc, OSError) and exc.errno and exc.strerror:
        text = exc.strerror
    else:
        text = gdal_message(exc)
    text = text.replace(str(tmp), str(out))
    if "space" not in text.lower():
        try:
            free = shutil.disk_usage(out.parent).free
        except OSError:
            free = None
        if free is not None and free < 2**20:
            text += f" (the disk holding {out.parent} is full: {free // 1024} KiB free)"
    return text


def creation_options(dtype: str, blocksize: int = 256, compress: Optional[str] = "deflate") -> dict:
    opts = {"tiled": True, "blockxsize": blocksize, "blockysize": blocksize, "BIGTIFF": "IF_SAFER"}
    if compress and compress.lower() != "none":
        opts["compress"] = compress
        opts["num_threads"] = "ALL_CPUS"  # GDAL compresses blocks on its own threads
        if compress.lower() == "zstd":
            opts["zstd_level"] = 1   # ~3x faster than the default 9, a few % larger
        if not dtype.startswith("complex"):  # GDAL has no predictor for complex samples
            opts["predictor"] = 3 if np.dtype(dtype).kind == "f" else 2
    return opts


def _array_windows(arr: np.ndarray, rows: int) -> Iterator[Tuple[Window, np.ndarray]]:
    h, w = arr.shape[-2:]
    for r in range(0, h, rows):
        n = min(rows, h - r)
        yield Window(0, r, w, n), arr[..., r:r + n, :]


def write_geotiff_atomic(path: Union[str, os.PathLike],
                         data: Union[np.ndarray, Iterable[Tuple[Any, np.ndarray]]], *,
                         width: Optional[int] = None, height: Optional[int] = None, count: Optional[int] = None,
                         dtype: Optional[str] = None, crs: Any = None, transform: Any = None,
                         nodata: Optional[float] = None, profile: Optional[Mapping[str, Any]] = None,
                         tags: Optional[Mapping[str, Any]] = None,
                         band_descriptions: Optional[Sequence[str]] = None,
                         band_tags: Optional[Sequence[Mapping[str, Any]]] = None,
                         overviews: Sequence[int] = (), overview_resampling: str = "average",
                         blocksize: int = 256, compress: Optional[str] = "deflate",
                         progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                         overwrite: bool = False, forbid: Iterable[Union[str, os.PathLike]] = (),
                         gcps: Sequence[Any] = (), gcps_crs: Any = None) -> Path:
    """Write a tiled, compressed GeoTIFF; the file appears only once it is complete.

    ``data`` is a (H, W) / (bands, H, W) array, or an iterable of ``(window, block)`` pairs
    (``window`` with col_off/row_off/width/height; ``block`` (h, w) or (bands, h, w)), so a scene
    larger than memory streams through; then width/height/count/dtype come from the keywords or
    ``profile`` (a rasterio profile: only its geometry keys are used). Progress: stage "export",
    done/total in pixels. On any error or cancellation the temp file is removed; ExportError when
    the output is one of ``forbid`` (the inputs) or exists and ``overwrite`` is False.
    """
    geo: Dict[str, Any] = {k: (profile or {}).get(k) for k in _PROFILE_KEYS}   # rasterio profile values
    given = {"width": width, "height": height, "count": count, "dtype": dtype, "crs": crs,
             "transform": transform, "nodata": nodata}
    geo.update({k: v for k, v in given.items() if v is not None})
    if isinstance(data, np.ndarray):
        if data.ndim not in (2, 3):
            raise ExportError(f"{path}: expected a (H, W) or (bands, H, W) array, got shape {data.shape}")
        geo.update(height=data.shape[-2], width=data.shape[-1], count=1 if data.ndim == 2 else data.shape[0])
        geo["dtype"] = geo["dtype"] or str(data.dtype)
        data = _array_windows(data, max(blocksize, (8 * 2**20) // max(1, data.shape[-1]) // blocksize * blocksize))
    missing = [k for k in ("width", "height", "count", "dtype") if not geo.get(k)]
    if missing:
        raise ExportError(f"{path}: streaming a window iterator needs {', '.join(missing)} (keywords or profile)")
    out = check_output_path(path, forbid, overwrite)
    W, H, B = int(geo["width"]), int(geo["height"]), int(geo["count"])
    tmp = make_temp(out)
    total = W * H
    try:
        check(cancel)
        report(progress, "export", 0, total, out.name)
        opts = creation_options(str(geo["dtype"]), blocksize, compress)
        with gdal_failures() as failures:
            with rasterio.open(tmp, "w", driver="GTiff", width=W, height=H, count=B, dtype=geo["dtype"],
                               crs=geo["crs"], transform=geo["transform"], nodata=geo["nodata"], **opts) as dst:
                if gcps and geo["transform"] is None:
                    dst.gcps = (list(gcps), gcps_crs)  # scenes georeferenced by control points only
                done = 0
                for win, block in data:
                    check(cancel)
                    block = np.asarray(block)
                    if block.ndim == 2:
                        block = block[np.newaxis]
                    w = Window(win.col_off, win.row_off, win.width, win.height)
                    if block.shape != (B, w.height, w.width) or not w.inside(W, H):
                        raise ExportError(f"{out}: block of shape {block.shape} for window {w} does not fit a "
                                          f"{B} x {H} x {W} raster")
                    dst.write(block, window=RioWindow(w.col_off, w.row_off, w.width, w.height))
                    done += w.width * w.height
                    report(progress, "export", min(done, total), total, out.name)
                if tags:
                    dst.update_tags(**{str(k): str(v) for k, v in tags.items()})
                for i, desc in enumerate(band_descriptions or ()):
                    dst.set_band_description(i + 1, str(desc))
                for i, bt in enumerate(band_tags or ()):
                    dst.update_tags(i + 1, **{str(k): str(v) for k, v in bt.items()})
            # GDAL flushes cached blocks on close and only logs a failure there: check, then read back
            failures.raise_if_any(f"{out}: could not be written")
            verify_geotiff(tmp, W, H, B)
            if overviews:
                # built on the closed, verified file, so a failure raises instead of crashing GDAL
                check(cancel)
                report(progress, "export", total, total, "building overviews")
                with rasterio.open(tmp, "r+") as dst:
                    dst.build_overviews([int(f) for f in overviews], Resampling[overview_resampling])
                    dst.update_tags(ns="rio_overview", resampling=overview_resampling)
                failures.raise_if_any(f"{out}: could not write overviews")
                verify_geotiff(tmp, W, H, B, overviews, base=False)  # the base was read back above
        check(cancel)
        fsync_path(tmp)
        os.replace(tmp, out)
    except CancelledError:
        remove_temp(tmp)
        raise
    except ExportError as exc:
        text = why(exc, tmp, out) if isinstance(exc, WriteFailedError) else str(exc).replace(str(tmp), str(out))
        remove_temp(tmp)  # after why(), which looks at the free space the temporary took
        raise ExportError(text) from None
    except GDAL_ERRORS as exc:
        text = why(exc, tmp, out)
        remove_temp(tmp)
        raise ExportError(f"{out}: could not be written: {text}") from None
    except BaseException:
        remove_temp(tmp)
        raise
    report(progress, "export", total, total, f"wrote {out.name}")
    return out
