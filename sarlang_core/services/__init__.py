"""Facades that both the GUI and the CLI call."""

from ..io import Window
from .scene_session import RegionStats, Render, SceneSession, StatsPair, build_overviews, warm_up_filters

# Window: the pixel window SceneSession.render and region_stats take
__all__ = ["SceneSession", "Render", "RegionStats", "StatsPair", "Window", "build_overviews", "warm_up_filters"]
