"""Facades that both the GUI and the CLI call."""

from .scene_session import RegionStats, Render, SceneSession, StatsPair

__all__ = ["SceneSession", "Render", "RegionStats", "StatsPair"]
