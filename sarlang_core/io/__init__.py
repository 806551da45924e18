"""Scene I/O: lazy reads by window and level, georeferencing, overview cache, atomic export.

    from sarlang_core.io import open_scene, Window
    with open_scene("scene.tif") as scene:
        level = scene.level_for_zoom(0.1)
        band = scene.read("VV", None, level)       # float32, NaN where invalid
"""

import os

# GDAL's block cache defaults to 5 % of physical memory; a whole-scene export would fill it with
# written blocks. Our own tile cache holds what the viewer needs, so GDAL gets a modest one.
# (Values below 100,000 are megabytes; a user's own setting wins.)
os.environ.setdefault("GDAL_CACHEMAX", "64")

from .base import COMPLEX_AS, Scene  # noqa: E402
from .cache import CACHE_ENV, cache_root, cache_vrt_path  # noqa: E402
from .export import write_geotiff_atomic  # noqa: E402
from .meta import BandInfo, Level, Window, parse_polarisation  # noqa: E402
from .opener import open_scene  # noqa: E402
from .overviews import build_overviews  # noqa: E402

__all__ = ["open_scene", "Scene", "BandInfo", "Level", "Window", "build_overviews", "write_geotiff_atomic",
           "COMPLEX_AS", "CACHE_ENV", "cache_root", "cache_vrt_path", "parse_polarisation"]
