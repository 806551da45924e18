"""Scene I/O: lazy reads by window and level, georeferencing, overview cache, atomic export.

    from sarlang_core.io import open_scene, Window
    with open_scene("scene.tif") as scene:
        level = scene.level_for_zoom(0.1)
        band = scene.read("VV", None, level)       # float32, NaN where invalid
"""

from .base import COMPLEX_AS, Scene
from .cache import CACHE_ENV, cache_root, cache_vrt_path
from .export import write_geotiff_atomic
from .meta import BandInfo, Level, Window, parse_polarisation
from .opener import open_scene
from .overviews import build_overviews

__all__ = ["open_scene", "Scene", "BandInfo", "Level", "Window", "build_overviews", "write_geotiff_atomic",
           "COMPLEX_AS", "CACHE_ENV", "cache_root", "cache_vrt_path", "parse_polarisation"]
