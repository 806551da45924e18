"""The main window end to end, offscreen: open, filter, swipe, region statistics, export, errors."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from gui_helpers import open_and_wait, open_fails, screenshot, settle
from PySide6.QtCore import QMimeData, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from app.main import sample_scene_path


def open_sample(qtbot, win):
    open_and_wait(qtbot, win, sample_scene_path())
    settle(qtbot, win)


def test_sample_opens_and_processed_view_differs_from_raw(qtbot, window):
    open_sample(qtbot, window)
    raw, proc = window.renderer.last_raw, window.renderer.last_proc
    assert raw.values.shape == proc.values.shape and raw.values.size > 100_000
    # refined Lee removes speckle: the processed view is much smoother than the raw one
    assert np.nanstd(np.diff(proc.values, axis=1)) < 0.6 * np.nanstd(np.diff(raw.values, axis=1))
    img = window.compare.proc_view.image.image
    assert img is not None and img.shape == proc.values.shape + (4,)
    assert np.array_equal(img[..., 0], proc.image)                   # the pipeline's uint8 stretch
    assert np.array_equal(img[..., 3] == 0, np.isnan(proc.values))   # nodata is transparent
    limits = window.pipeline_panel.limits_label.text()
    assert "every pixel: exact" in limits or "overview" in limits
    shot = screenshot(window, "main_window_side_by_side")
    assert shot.stat().st_size > 20_000


def test_changing_the_filter_changes_the_processed_view(qtbot, window):
    open_sample(qtbot, window)
    before = window.renderer.last_proc.values.copy()
    panel = window.pipeline_panel
    panel.filter.setCurrentIndex(panel.filter.findData("boxcar"))
    panel.window.setValue(9)
    qtbot.waitUntil(lambda: (window.renderer.pipeline.filter.name, window.renderer.pipeline.filter.window)
                    == ("boxcar", 9))
    settle(qtbot, window)
    after = window.renderer.last_proc.values
    assert after.shape == before.shape
    assert np.nanmean(np.abs(after - before)) > 0.1
    # the raw view does not depend on the filter
    assert window.renderer.pipeline.raw().filter.name == "none"
    # a stretch-only change re-stretches without refiltering: no new tile misses
    misses = window.session.tiles.cache.misses
    panel.low.setValue(5.0)
    qtbot.waitUntil(lambda: window.renderer.pipeline.stretch.low == 5.0)
    settle(qtbot, window)
    assert window.session.tiles.cache.misses == misses
    assert window.renderer.last_proc.limits.low_pct == 5.0


def test_swipe_mode_shows_raw_left_of_the_divider(qtbot, window):
    open_sample(qtbot, window)
    window.set_compare_mode("swipe")
    settle(qtbot, window)
    overlay = window.compare.swipe
    overlay.set_position(300.0)
    qtbot.wait(50)
    clip = overlay.clip.rect()
    assert clip.right() == pytest.approx(300.0, abs=1e-6)
    assert overlay.image.image is not None and window.compare.swipe_view.image.image is not None
    # the overlay (left) is the raw render, the base image the processed one
    assert np.array_equal(overlay.image.image[..., 0], window.renderer.last_raw.image)
    assert np.array_equal(window.compare.swipe_view.image.image[..., 0], window.renderer.last_proc.image)
    screenshot(window, "main_window_swipe")


def test_region_statistics_show_speckle_reduction(qtbot, window):
    open_sample(qtbot, window)
    # a homogeneous patch of the sample's sea (left side of the scene)
    window.compare.start_region(QRectF(40, 420, 60, 60))
    qtbot.waitUntil(lambda: window.stats_panel.last is not None, timeout=10000)
    pair = window.stats_panel.last
    assert pair.before.pixels == 3600
    assert pair.after.enl > 4 * pair.before.enl
    assert "ENL ×" in window.stats_panel.summary.text()
    assert window.stats_panel.table.item(2, 1).text() != ""
    screenshot(window, "main_window_region_stats")


def test_export_geotiff_and_png(qtbot, window, tmp_path):
    open_sample(qtbot, window)
    out = tmp_path / "processed.tif"
    with qtbot.waitSignal(window.jobs.exported, timeout=60000):
        window.jobs.export(window.session, window.pipeline_panel.pipeline(), str(out))
    with rasterio.open(out) as ds:
        assert ds.dtypes[0] == "uint8" and ds.crs is not None
        assert (ds.width, ds.height) == (window.session.scene.width, window.session.scene.height)
        assert "SARLANG_PIPELINE" in ds.tags()
    png = window.export_png(str(tmp_path / "view.png"))
    from PIL import Image
    assert Image.open(png).size == window.renderer.last_proc.image.shape[::-1]


def test_bad_files_show_a_dialog_and_keep_the_scene(qtbot, window, tmp_path):
    open_sample(qtbot, window)
    session = window.session
    bad = tmp_path / "notes.tif"
    bad.write_text("this is not a tiff")
    assert "notes.tif" in open_fails(qtbot, window, bad)
    assert window.session is session
    assert "notes.tif" in window.last_error
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    assert "empty.tif" in open_fails(qtbot, window, empty)
    assert window.session is session


def test_hover_reports_coordinates_and_values(qtbot, window):
    open_sample(qtbot, window)
    window._hovered(100.5, 200.5)
    text = window.cursor_label.text()
    assert "px 100, 200" in text and "map" in text and "dB" in text
    assert "°N" in text or "°S" in text


def test_drop_opens_a_scene(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_scene_path()))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.sceneOpened, timeout=30000):
        window.dropEvent(event)
    assert window.session is not None and Path(window.session.scene.path) == sample_scene_path()


def test_choices_persist_between_runs(qtbot, tmp_path):
    from app import workers
    from app.main_window import MainWindow

    first = MainWindow()
    qtbot.addWidget(first)
    first.show()
    open_sample(qtbot, first)
    panel = first.pipeline_panel
    panel.filter.setCurrentIndex(panel.filter.findData("frost"))
    first.set_compare_mode("swipe")
    first.close()
    workers.wait_all(5000)

    second = MainWindow()
    qtbot.addWidget(second)
    assert second.pipeline_panel.pipeline().filter.name == "frost"
    assert second.compare.mode == "swipe"
    from app import settings
    assert str(sample_scene_path().resolve()) in settings.recent_files()
    second.close()


def test_scene_without_overviews_gets_them_in_the_background(qtbot, window, tmp_path, monkeypatch):
    from sarlang_core import synthetic as syn
    from sarlang_core.io import gdal_scene

    # scenes above this size get no in-memory levels: they need real overviews
    monkeypatch.setattr(gdal_scene, "MEMORY_PYRAMID_MAX_PIXELS", 512 * 512)
    bands = syn.speckle(syn.reflectivity_map(1200, 1100, 5), 1.0, 9)
    folder = tmp_path / "data"
    folder.mkdir()
    path = syn.write_scene(folder / "flat_pyramid.tif", bands, overviews=())
    before = path.read_bytes()
    with qtbot.waitSignal(window.jobs.overviewsReady, timeout=60000):
        open_and_wait(qtbot, window, path)
    qtbot.waitUntil(lambda: len(window.session.scene.levels) > 1, timeout=10000)
    assert window.session.scene.overview_source == "cache"
    assert path.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["flat_pyramid.tif"]
    settle(qtbot, window)


def test_colour_image_is_refused_with_a_dialog(qtbot, window, tmp_path):
    import rasterio

    open_sample(qtbot, window)
    rgb = tmp_path / "photo.tif"
    data = np.random.default_rng(0).integers(0, 255, (4, 64, 64), dtype=np.uint8)
    with rasterio.open(rgb, "w", driver="GTiff", width=64, height=64, count=4, dtype="uint8",
                       photometric="RGB", alpha="YES") as ds:
        ds.write(data)
    open_fails(qtbot, window, rgb)
    assert "photo.tif" in window.last_error
    assert Path(window.session.scene.path) == sample_scene_path()


@pytest.mark.parametrize("kind", ["one_pixel", "all_nodata", "nan_inf", "negative"])
def test_odd_scenes_open_and_render(qtbot, window, tmp_path, kind):
    from sarlang_core import synthetic as syn

    rng = np.random.default_rng(4)
    data = rng.gamma(1.0, 0.1, (1, 120, 90)).astype(np.float32)
    nodata = None
    if kind == "one_pixel":
        data = np.array([[[0.5]]], np.float32)
    elif kind == "all_nodata":
        data[:] = -9999.0
        nodata = -9999.0
    elif kind == "nan_inf":
        data[0, ::7, ::5] = np.nan
        data[0, 3, :] = np.inf
    elif kind == "negative":
        data[0, :10, :] *= -1
    path = syn.write_scene(tmp_path / f"{kind}.tif", data, nodata=nodata, overviews=())
    open_and_wait(qtbot, window, path)
    settle(qtbot, window)
    window.compare.set_view(QRectF(0, 0, data.shape[2], data.shape[1]))   # full resolution on screen
    qtbot.waitUntil(lambda: window.renderer.last_proc is not None and window.renderer.last_proc.level == 0,
                    timeout=10000)
    settle(qtbot, window)
    proc = window.renderer.last_proc
    assert proc.image.shape == proc.values.shape
    if kind == "all_nodata":
        assert np.isnan(proc.values).all() and (window.compare.proc_view.image.image[..., 3] == 0).all()
    if kind == "nan_inf":
        assert np.isnan(proc.values[::7, ::5]).all()


def test_export_can_be_cancelled_from_the_status_bar(qtbot, window, tmp_path):
    from sarlang_core import synthetic as syn

    pixels = np.random.default_rng(2).gamma(1.0, 0.1, (1, 3072, 3072)).astype(np.float32)
    big = syn.write_scene(tmp_path / "big.tif", pixels)
    open_and_wait(qtbot, window, big)
    settle(qtbot, window)
    out = tmp_path / "out.tif"
    window.jobs.progress.connect(lambda stage, f: window.job_cancel.click() if stage == "export" and f > 0 else None)
    with qtbot.waitSignal(window.jobs.message, timeout=60000, check_params_cb=lambda m: m.endswith("cancelled")):
        window.jobs.export(window.session, window.pipeline_panel.pipeline(), str(out))
    assert not out.exists() and not [p.name for p in tmp_path.iterdir() if "out" in p.name]


def test_saving_a_pipeline_is_atomic_and_a_failure_is_shown(qtbot, window, tmp_path):
    """File > Save pipeline: the file loads back as the same recipe; an unwritable place gives a
    dialog naming the file, the window stays up and nothing is left half-written."""
    open_sample(qtbot, window)
    good = tmp_path / "recipe.json"
    assert window.save_pipeline(str(good))
    from sarlang_core.preprocess.pipeline import Pipeline
    assert Pipeline.load(str(good)) == window.pipeline_panel.pipeline()
    blocked = tmp_path / "a-file"
    blocked.write_text("x")                 # a file where the folder should be: cannot be written
    assert not window.save_pipeline(str(blocked / "recipe.json"))
    assert "recipe.json" in window.last_error
    assert blocked.read_text() == "x"


def test_view_png_follows_the_umask_and_a_failure_is_shown(qtbot, window, tmp_path):
    """Export current view as PNG: plain-open() permissions, and a place that cannot be written
    gives a dialog naming the file, with no temporary left behind."""
    import os
    import stat

    open_sample(qtbot, window)
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o022)
    try:
        png = window.export_png(str(out / "view.png"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(png).st_mode) == 0o644
    blocked = out / "a-file"
    blocked.write_text("x")
    assert window.export_png(str(blocked / "view.png")) is None
    assert "view.png" in window.last_error
    assert sorted(p.name for p in out.iterdir()) == ["a-file", "view.png"]


@pytest.mark.skipif(__import__("sarlang_core.preprocess.filters", fromlist=["x"]).cuda_available(),
                    reason="needs a torch whose CUDA calls fail (here they would succeed)")
def test_a_gpu_that_fails_while_filtering_leaves_the_view_right_and_says_so(qtbot, window, monkeypatch):
    """CUDA was seen at start and 'auto' was set on it; its calls then fail (as when a GPU is lost):
    the view is the numba result and the status bar says, once, that preprocessing is on the CPU."""
    import torch  # noqa: F401  (a process that has used its GPU has torch imported: not timed here)

    from sarlang_core.preprocess.filters import cuda

    monkeypatch.setattr(cuda, "_cuda_ok", True)
    monkeypatch.setattr(cuda, "_lost", "")
    monkeypatch.setenv(cuda.ENV_DEVICE, "cuda")
    open_and_wait(qtbot, window, sample_scene_path())
    settle(qtbot, window, timeout=60000)
    qtbot.waitUntil(lambda: "stopped working for preprocessing" in window.statusBar().currentMessage())
    proc = window.renderer.last_proc.values.copy()
    assert window.renderer.pipeline.filter.name == "refined-lee" and np.isfinite(proc).mean() > 0.5
    monkeypatch.setenv(cuda.ENV_DEVICE, "cpu")
    window.session.tiles.cache.clear()
    window.renderer.schedule()
    settle(qtbot, window, timeout=60000)
    np.testing.assert_array_equal(window.renderer.last_proc.values, proc)
