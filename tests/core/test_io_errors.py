"""Bad inputs give one clear SceneError line naming the file, never a raw GDAL/numpy error."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import rasterio
from PIL import Image

from sarlang_core import synthetic as syn
from sarlang_core.errors import SceneError, UnsupportedSceneError
from sarlang_core.io import Window, open_scene


def _assert_clear(exc: BaseException, path) -> None:
    msg = str(exc)
    assert str(path.name) in msg and "\n" not in msg and "Traceback" not in msg


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "text_tif", "garbage_png", "text_npy"])
def test_bad_files(tmp_path, case):
    path = tmp_path / {"missing": "nope.tif", "directory": "folder", "empty": "empty.tif",
                       "text_tif": "notes.tif", "garbage_png": "chip.png", "text_npy": "a.npy"}[case]
    if case == "directory":
        path.mkdir()
    elif case == "empty":
        path.write_bytes(b"")
    elif case != "missing":
        path.write_text("this is not a raster\n" * 20)
    with pytest.raises(SceneError) as err:
        open_scene(path)
    _assert_clear(err.value, path)
    expected = {"missing": "no such file", "directory": "folder", "empty": "empty", "text_tif": "TIF file",
                "garbage_png": "not a readable PNG", "text_npy": ".npy"}[case]
    assert expected in str(err.value)


def test_truncated_tiff_fails_on_open_or_read(make_scene, tmp_path):
    src, _ = make_scene("whole.tif", h=512, w=512, bands=1, overviews=(), compress=None)
    raw = src.read_bytes()
    path = tmp_path / "truncated.tif"
    path.write_bytes(raw[: len(raw) * 6 // 10])
    with pytest.raises(SceneError) as err:
        with open_scene(path) as scene:  # the sample may pass: the missing tiles fail on read
            for row in range(0, 512, 256):
                for col in range(0, 512, 256):
                    scene.read(0, Window(col, row, 256, 256))
    _assert_clear(err.value, path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(SceneError) as err:
        open_scene(path)
    _assert_clear(err.value, path)


def test_one_pixel_raster_opens(make_scene):
    path, _ = make_scene("one.tif", data=np.array([[[0.25]]], np.float32))
    with open_scene(path) as scene:
        assert (scene.width, scene.height, scene.count) == (1, 1, 1)
        assert scene.read(0).tolist() == [[0.25]]
        assert scene.level_for_zoom(0.001) == 0
        assert scene.read_padded(0, Window(-1, -1, 3, 3)).shape == (3, 3)


def test_all_nodata_raster_opens_with_warning(make_scene):
    path, _ = make_scene("blank.tif", data=np.full((1, 64, 64), -1.0, np.float32), nodata=-1.0, overviews=())
    with open_scene(path) as scene:
        assert np.isnan(scene.read(0)).all()
        assert any("nodata" in w for w in scene.warnings)


def test_negative_values_warn(make_scene):
    data = np.random.default_rng(0).normal(0, 1, (1, 64, 64)).astype(np.float32)
    path, _ = make_scene("neg.tif", data=data, band_descriptions=("VV",))
    with open_scene(path) as scene:
        assert any("negative" in w and "VV" in w for w in scene.warnings)


def test_db_band_is_flagged(make_scene):
    data = np.full((1, 16, 16), -12.0, np.float32)
    path, _ = make_scene("db.tif", data=data, band_descriptions=("Sigma0_VV_db",))
    with open_scene(path) as scene:
        assert scene.bands[0].polarisation == "VV" and scene.quantity == "unknown"
        assert any("decibel" in w for w in scene.warnings)


@pytest.mark.parametrize("count", [3, 4])
def test_rgb_geotiff_is_unsupported(tmp_path, count):
    path = tmp_path / f"photo{count}.tif"
    data = np.random.default_rng(0).integers(0, 255, (count, 32, 32), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=count, dtype="uint8",
                       photometric="RGB", crs="EPSG:32631", transform=syn.default_transform()) as dst:
        dst.write(data)
        if count == 4:
            from rasterio.enums import ColorInterp
            dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with pytest.raises(UnsupportedSceneError, match="RGB") as err:
        open_scene(path)
    _assert_clear(err.value, path)


def test_colour_png_is_unsupported(tmp_path):
    path = tmp_path / "colour.png"
    rgb = np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    with pytest.raises(UnsupportedSceneError, match="RGB colour image") as err:
        open_scene(path)
    _assert_clear(err.value, path)


def test_unsupported_npy(tmp_path):
    path = tmp_path / "strings.npy"
    np.save(path, np.array(["a", "b"]))
    with pytest.raises(UnsupportedSceneError) as err:
        open_scene(path)
    _assert_clear(err.value, path)
    path4 = tmp_path / "four_d.npy"
    np.save(path4, np.zeros((2, 2, 2, 2), np.float32))
    with pytest.raises(UnsupportedSceneError, match="4-D"):
        open_scene(path4)


def test_huge_header_opens_lazily(tmp_path):
    """A 100 000 x 100 000 float32 header (40 GB of pixels) opens without allocating them."""
    path = tmp_path / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100_000, height=100_000, count=1, dtype="float32",
                       tiled=True, blockxsize=256, blockysize=256, SPARSE_OK=True, BIGTIFF="YES",
                       crs="EPSG:32631", transform=syn.default_transform()):
        pass  # no tile is written: a sparse file
    assert path.stat().st_size < 10 * 2**20
    tracemalloc.start()
    try:
        with open_scene(path) as scene:
            assert (scene.width, scene.height) == (100_000, 100_000)
            assert scene.overview_source == "none" and any("no overviews" in w for w in scene.warnings)
            assert scene.read(0, Window(50_000, 50_000, 64, 64)).shape == (64, 64)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20


def test_npy_read_racing_close_fails_as_closed(tmp_path):
    # read() checks "closed" before it reaches _read_raw; a close() on another thread can land in
    # between. That read must fail as a closed scene, not with a TypeError on the freed array.
    from sarlang_core.errors import SarlangError

    path = tmp_path / "a.npy"
    np.save(path, np.ones((8, 8), dtype=np.float32))
    scene = open_scene(path)
    scene.close()
    with pytest.raises(SarlangError, match="closed"):
        scene._read_raw(0, Window(0, 0, 4, 4), 0)
