"""Export of a processed scene: tiled, georeferenced GeoTIFF with the Pipeline in its metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .. import __version__
from ..errors import ExportError
from ..io import write_geotiff_atomic
from ..io.export import check_output_path
from ..preprocess.pipeline import Pipeline
from ..preprocess.radiometry import NODATA_U8, stretch_to_uint8
from ..progress import CancelToken, ProgressCallback

PIPELINE_TAG = "SARLANG_PIPELINE"


COMPRESSIONS = ("zstd", "deflate", "lzw", "none")
OUTPUT_SUFFIXES = (".tif", ".tiff")


def check_output_format(out: Union[str, Path]) -> None:
    """Exports are GeoTIFFs (georeferenced, float32 or uint8, with the pipeline in their tags):
    a name that says another format is refused rather than given a TIFF under that name."""
    suffix = Path(out).suffix
    if suffix.lower() not in OUTPUT_SUFFIXES:
        said = f"'{suffix}' names another format" if suffix else "it has no extension"
        raise ExportError(f"{out}: the processed scene is written as GeoTIFF only and {said}; "
                          f"name the output {' or '.join(OUTPUT_SUFFIXES)}")


def export_processed(session, pipeline: Pipeline, out: Union[str, Path], *, overwrite: bool = False,
                     block: int = 1024, compress: str = "zstd", overviews: bool = True,
                     progress: Optional[ProgressCallback] = None,
                     cancel: Optional[CancelToken] = None) -> Path:
    """Write the full-resolution result of ``pipeline``: uint8 when it stretches, else float32.

    Streams block by block, so scenes larger than memory work. ZSTD (level 1) by default: about
    twice as fast as DEFLATE at the same size (GDAL >= 2.3 / QGIS 3 read it; pick "deflate" for
    older tools). Written to a temporary file and
    renamed on success, so a failure or a cancel leaves nothing behind and the input is never
    overwritten.
    """
    check_output_format(out)
    scene = session.scene
    check_output_path(out, [scene.path], overwrite)  # before the work, not after it
    limits = session.limits(pipeline, progress=progress, cancel=cancel)
    stretched = limits is not None

    key = session.filter_key(pipeline)
    band_name = scene.bands[key.band].name

    def blocks():
        valid = 0
        for win, vals in session.iter_blocks(pipeline, block=block, progress=progress, cancel=cancel, stage="export"):
            valid += int(np.count_nonzero(~np.isnan(vals)))
            if stretched:
                yield win, stretch_to_uint8(vals, limits.lo, limits.hi)
            else:
                yield win, vals
        if not valid:  # raised inside the writer: its temporary file goes, nothing reaches the output
            raise ExportError(f"{scene.path}: every pixel of band {band_name} is nodata or invalid; nothing "
                              "written (choose another --band or check the input's nodata value)")
    tags = {
        PIPELINE_TAG: pipeline.to_json(indent=None),
        "SARLANG_SOURCE": str(scene.path),
        "SARLANG_VERSION": __version__,
        "SARLANG_UNIT": pipeline.output_unit + (" (stretched to 0-255)" if stretched else ""),
    }
    if limits is not None:
        tags["SARLANG_STRETCH"] = json.dumps({"lo": limits.lo, "hi": limits.hi, "mode": limits.mode,
                                              "low_pct": limits.low_pct, "high_pct": limits.high_pct})
    return write_geotiff_atomic(
        out, blocks(),
        width=scene.width, height=scene.height, count=1,
        dtype="uint8" if stretched else "float32",
        crs=scene.crs, transform=None if (scene.gcps and scene.crs is None) else scene.transform,
        gcps=scene.gcps, gcps_crs=scene.gcps_crs,
        overviews=overview_factors(scene.width, scene.height) if overviews else (),
        nodata=NODATA_U8 if stretched else float("nan"),
        tags=tags, band_descriptions=[f"{band_name} {pipeline.describe()}"],
        overwrite=overwrite, forbid=[scene.path], progress=None, cancel=cancel, compress=compress,
    )


def overview_factors(width: int, height: int, smallest: int = 256) -> tuple:
    """2, 4, 8, ... until the overview fits in ``smallest`` pixels: exports open fast anywhere."""
    factors, f = [], 2
    while max(width, height) / f >= smallest / 2 and max(width, height) > smallest:
        factors.append(f)
        f *= 2
    return tuple(factors)


def read_pipeline_tag(path: Union[str, Path]) -> Optional[Pipeline]:
    """The Pipeline recorded in an exported GeoTIFF, if any."""
    import rasterio

    with rasterio.open(path) as ds:
        text = ds.tags().get(PIPELINE_TAG)
    return Pipeline.from_json(text) if text else None


def save_view_png(render, out: Union[str, Path]) -> Path:
    """The processed pixels of a view as PNG (grey plus alpha, nodata transparent), written
    atomically with plain-open() permissions; a failure names ``out`` and leaves nothing there."""
    from ..atomic import write_bytes_atomic
    from .scene_session import png_bytes

    out = Path(out)
    try:
        return write_bytes_atomic(out, png_bytes(render))
    except OSError as exc:
        raise ExportError(f"{out}: cannot write the PNG ({exc.strerror or exc})") from exc

