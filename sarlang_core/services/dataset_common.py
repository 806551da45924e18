"""What the dataset services share: opening a project's store, the Pipeline a project records,
and rendering one of its images through it (what a model sees)."""

from __future__ import annotations

from pathlib import Path


def open_store(store_path, create: bool = True):
    """The project's ``Store`` (a context manager); ``create``: make it when nothing is there."""
    from ..datasets.store import Store

    return Store.open(store_path, create=create)


def project_pipeline(store):
    """The Pipeline an open project records (the paper's chain when it records none): what the
    review window shows and what export writes the images through."""
    from ..preprocess.pipeline import Pipeline

    recorded = store.get_meta("pipeline")
    return (Pipeline.from_json(recorded) if isinstance(recorded, str) else
            Pipeline.from_dict(recorded) if isinstance(recorded, dict) else Pipeline())


def render_path(path, pipeline, *, max_pixels: int | None = None):
    """The 8-bit image of the scene at ``path`` through ``pipeline``, whole, at full resolution or
    (with ``max_pixels``) at the finest level with at most that many pixels."""
    from ..io import Window
    from .scene_session import SceneSession

    session = SceneSession.open(Path(path))
    try:
        levels = session.scene.levels
        level = levels[-1]
        for lv in levels:
            if max_pixels is None or lv.width * lv.height <= max_pixels:
                level = lv
                break
        return session.render(pipeline, level.index, Window(0, 0, level.width, level.height)).image
    finally:
        session.close()


def render_image(record, pipeline, root: Path, *, max_pixels: int | None = None):
    """``render_path`` of an image record (a relative path that does not exist here is taken
    relative to ``root``, the project's folder)."""
    path = Path(record.path)
    if not path.is_absolute() and not path.exists():
        path = root / path
    return render_path(path, pipeline, max_pixels=max_pixels)
