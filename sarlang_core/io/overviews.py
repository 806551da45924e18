"""Building overviews for a scene without touching the user's file.

Default: into the per-user cache (see ``cache.py``). For a scene ``<key>`` it writes one tiled
float32 GeoTIFF per factor (``<key>.x2.tif``, ``<key>.x4.tif``, ...) and last a GDAL VRT
(``<key>.vrt``) that wraps the source and lists those files as its overviews, so any GDAL tool
can open the VRT with overviews; ``open_scene`` of the source finds the VRT and reports
``overview_source == "cache"``. The VRT is written last: if it exists, the entry is complete.

Overview values are NaN-aware block means of the full-resolution values as ``Scene.read``
returns them (nodata ignored), computed in strips so memory stays bounded; progress is per strip
and cancelling stops at the next strip, removing everything written so far. Complex data:
overviews hold mean intensity (I^2+Q^2), i.e. a multilook, and the VRT's bands are intensity too
(GDAL's built-in ``intensity`` pixel function) so the whole VRT is consistent.

``sidecar=True`` instead asks GDAL to build a ``<file>.ovr`` next to the file (the file itself is
still never modified); GDAL gives no progress inside a factor, so progress and cancel act
between factors.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Optional, Sequence, Union

import rasterio
from affine import Affine
from rasterio.enums import Resampling

from ..atomic import create_temp, write_text_atomic
from ..errors import SarlangError, UnsupportedSceneError
from ..progress import CancelToken, ProgressCallback, check, report
from .base import Scene
from .cache import cache_key, overview_dir
from .export import remove_quietly
from .gdal_scene import GDAL_ERRORS, GdalScene, gdal_message
from .meta import Window
from .opener import open_scene
from .pyramid import RESAMPLINGS, check_factors, default_factors, iter_reduced, level_shape
from .write_checks import gdal_failures, verify_geotiff

GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "uint64": "UInt64", "int64": "Int64", "float32": "Float32",
              "float64": "Float64", "complex_int16": "CInt16", "complex64": "CFloat32", "complex128": "CFloat64"}
_LEVEL_OPTS = {"tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "zlevel": 1,
               "predictor": 3, "interleave": "band", "BIGTIFF": "IF_SAFER"}


def build_overviews(scene_or_path: Union[Scene, str, os.PathLike], *, factors: Optional[Sequence[int]] = None,
                    resampling: str = "average", progress: Optional[ProgressCallback] = None,
                    cancel: Optional[CancelToken] = None, sidecar: bool = False,
                    overwrite: bool = False) -> Path:
    """Build overviews (default factors 2, 4, ... until the coarsest fits 256 px); return the
    cache VRT (or the sidecar .ovr). A Scene passed in is left as is: call its
    ``refresh_overviews()`` (or reopen it) to use the new levels."""
    if resampling not in RESAMPLINGS:
        raise SarlangError(f"overview resampling must be one of {RESAMPLINGS}, got {resampling!r}")
    if isinstance(scene_or_path, Scene):
        scene, own = scene_or_path, False
    else:
        scene, own = open_scene(scene_or_path), True
    try:
        if not isinstance(scene, GdalScene):
            raise UnsupportedSceneError(scene.path, "levels of .npy/PNG/JPEG scenes are computed in memory; "
                                        "there is nothing to build")
        fs = check_factors(factors) if factors else default_factors(scene.width, scene.height)
        if not fs:
            raise SarlangError(f"{scene.name} is only {scene.width} x {scene.height} pixels: it needs no overviews")
        if sidecar:
            return _build_sidecar(scene, fs, resampling, progress, cancel, overwrite)
        return _build_cache(scene, fs, resampling, progress, cancel)
    finally:
        if own:
            scene.close()


def _build_cache(scene: GdalScene, factors, resampling, progress, cancel) -> Path:
    folder = overview_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(scene.path)
    finals = [folder / f"{key}.x{f}.tif" for f in factors]
    temps: list = []
    total = scene.count * scene.height
    writers = []
    with gdal_failures() as caught:  # GDAL only logs a failed flush on close
        try:
            report(progress, "overviews", 0, total, f"building overviews of {scene.name}")
            temps.extend(create_temp(p) for p in finals)
            for f, tmp in zip(factors, temps):
                h, w = level_shape(scene.width, scene.height, f)
                t, sx, sy = scene.transform, scene.width / w, scene.height / h
                tr = Affine(t.a * sx, t.b * sy, t.c, t.d * sx, t.e * sy, t.f)
                writers.append(rasterio.open(tmp, "w", driver="GTiff", width=w, height=h, count=scene.count,
                                             dtype="float32", nodata=float("nan"), crs=scene.crs,
                                             transform=None if scene.transform.is_identity else tr, **_LEVEL_OPTS))
            done = 0
            for b in range(scene.count):
                def rows(r, n, b=b):
                    return scene.read(b, Window(0, r, scene.width, n), 0)
                for row, n, parts in iter_reduced(rows, scene.width, scene.height, factors, resampling):
                    check(cancel)
                    for f, dst, part in zip(factors, writers, parts):
                        win = rasterio.windows.Window(0, row // f, part.shape[1], part.shape[0])
                        dst.write(part, b + 1, window=win)
                    done += n
                    report(progress, "overviews", done, total)
            for dst in writers:
                dst.close()
            caught.raise_if_any(f"{scene.path}: could not build overviews in {folder}")
            for f, tmp in zip(factors, temps):  # a failed flush is not always even logged: read back
                h, w = level_shape(scene.width, scene.height, f)
                verify_geotiff(tmp, w, h, scene.count)
            check(cancel)
            for tmp, final in zip(temps, finals):
                os.replace(tmp, final)
            vrt = write_text_atomic(folder / f"{key}.vrt", _vrt_xml(scene, [p.name for p in finals]))
            # last: its presence marks a complete entry
        except BaseException as exc:
            for dst in writers:
                if not dst.closed:
                    dst.close()
            remove_quietly(*temps)
            if isinstance(exc, GDAL_ERRORS):
                raise SarlangError(f"{scene.path}: could not build overviews in {folder}: "
                                   f"{gdal_message(exc)}") from None
            raise
    report(progress, "overviews", total, total, "overviews ready")
    return vrt


def _vrt_xml(scene: GdalScene, level_files: Sequence[str]) -> str:
    root = ET.Element("VRTDataset", rasterXSize=str(scene.width), rasterYSize=str(scene.height))
    if scene.crs is not None:
        ET.SubElement(root, "SRS", dataAxisToSRSAxisMapping="1,2").text = scene.crs.to_wkt()
    if not scene.transform.is_identity:
        ET.SubElement(root, "GeoTransform").text = ", ".join(repr(float(v)) for v in scene.transform.to_gdal())
    for i, band in enumerate(scene.bands):
        attrs = {"dataType": "Float32" if scene.is_complex else GDAL_TYPES.get(scene.dtype, "Float32"),
                 "band": str(i + 1)}
        if scene.is_complex:
            attrs["subClass"] = "VRTDerivedRasterBand"
        el = ET.SubElement(root, "VRTRasterBand", attrs)
        if band.description:
            ET.SubElement(el, "Description").text = band.description
        if scene.nodata is not None:
            ET.SubElement(el, "NoDataValue").text = repr(scene.nodata)
        if scene.is_complex:
            ET.SubElement(el, "PixelFunctionType").text = "intensity"
            ET.SubElement(el, "SourceTransferType").text = "CFloat64"
        src = ET.SubElement(el, "SimpleSource")
        ET.SubElement(src, "SourceFilename", relativeToVRT="0").text = str(scene.path)
        ET.SubElement(src, "SourceBand").text = str(scene._bands_gdal[i])
        for name in level_files:
            ov = ET.SubElement(el, "Overview")
            ET.SubElement(ov, "SourceFilename", relativeToVRT="1").text = name
            ET.SubElement(ov, "SourceBand").text = str(i + 1)
    return ET.tostring(root, encoding="unicode")


def _build_sidecar(scene: GdalScene, factors, resampling, progress, cancel, overwrite) -> Path:
    if scene.is_complex:
        raise SarlangError(f"{scene.path}: GDAL would average complex values; build cached overviews "
                           "(intensity) instead of a sidecar")
    if scene.overview_source == "internal":
        raise SarlangError(f"{scene.path}: already has internal overviews; GDAL would ignore a sidecar .ovr")
    ovr = Path(f"{scene.path}.ovr")
    if ovr.exists() and not overwrite:
        raise SarlangError(f"{ovr}: already exists (allow overwriting to rebuild it)")
    folder = overview_dir()
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder, prefix=".sidecar-"))
    staged = None
    try:
        staged = create_temp(ovr)
        vrt = work / "source.vrt"
        vrt.write_text(_vrt_xml(scene, []), encoding="utf-8")
        for i, f in enumerate(factors):
            check(cancel)
            report(progress, "overviews", i, len(factors), f"GDAL: overview 1:{f}")
            with rasterio.open(vrt, "r+") as ds:  # a read-only source: GDAL writes source.vrt.ovr
                ds.build_overviews([f], Resampling[resampling])
        check(cancel)
        shutil.copyfile(work / "source.vrt.ovr", staged)
        os.replace(staged, ovr)
    except BaseException as exc:
        if staged is not None:
            remove_quietly(staged)
        if isinstance(exc, GDAL_ERRORS):
            raise SarlangError(f"{scene.path}: could not build a sidecar: {gdal_message(exc)}") from None
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(progress, "overviews", len(factors), len(factors), "overviews ready")
    return ovr

