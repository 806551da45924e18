"""Facades that both the GUI and the CLI call (one run path per job).

scene_session  an open scene: viewports, stretch limits, region statistics (SceneSession)
model_input    what a model sees of a scene
ask            asking a model about a scene: AskRequest -> ask_scene, boxes and GeoJSON
models         the model registry and the backends made from it
chat           conversations and their transcripts
export         processed GeoTIFFs
benchmarks     benchmark runs, their samples and comparisons
datasets, dataset_*   dataset import, curation, similarity and LLM captions
"""

from ..io import Window
from .scene_session import RegionStats, Render, SceneSession, StatsPair, build_overviews, warm_up_filters

# Window: the pixel window SceneSession.render and region_stats take
__all__ = ["SceneSession", "Render", "RegionStats", "StatsPair", "Window", "build_overviews", "warm_up_filters"]
