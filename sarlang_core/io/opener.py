"""``open_scene``: one entry point for every scene file, with one clear error line per bad input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from ..errors import SceneError
from .array_scene import open_image, open_npy
from .base import Scene
from .gdal_scene import GDAL_ERRORS, GdalScene, gdal_message

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def open_scene(path: Union[str, os.PathLike]) -> Scene:
    """Open a scene lazily (metadata and a small sample only).

    GeoTIFF or any raster GDAL reads; ``.png``/``.jpg``/``.jpeg`` grayscale chips; ``.npy``
    arrays (memory-mapped). Raises SceneError (UnsupportedSceneError for readable files that are
    not SAR-like, e.g. RGB photos) with a message naming the file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise SceneError(p, "no such file")
    if p.is_dir():
        # some products are folders GDAL reads (e.g. a Sentinel-1 .SAFE); anything else is a mistake
        try:
            return GdalScene(p.absolute())
        except SceneError:
            raise SceneError(p, "is a folder, not a scene file; open a GeoTIFF (or another raster) inside it") from None
    try:
        size = p.stat().st_size
        with open(p, "rb"):
            pass
    except OSError as exc:
        raise SceneError(p, f"cannot read the file: {exc.strerror or exc}") from None
    if size == 0:
        raise SceneError(p, "the file is empty (0 bytes)")
    p = p.absolute()
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return open_npy(p)
        if suffix in IMAGE_SUFFIXES:
            return open_image(p)
        return GdalScene(p)
    except SceneError as exc:
        if "not recognized as being in a supported file format" in exc.problem:
            kind = suffix.lstrip(".").upper() or "raster"
            raise SceneError(p, f"not a {kind} file GDAL can read (unrecognised content: wrong extension, "
                             "a text file or a corrupt download?)") from None
        raise
    except GDAL_ERRORS as exc:
        raise SceneError(p, f"cannot open: {gdal_message(exc)}") from None
    except MemoryError:
        raise SceneError(p, "not enough memory to open this file") from None
