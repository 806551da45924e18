"""Opening and reading a georeferenced, tiled SAR GeoTIFF with overviews."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlang_core.errors import SarlangError
from sarlang_core.io import BandInfo, Level, Window, open_scene


def test_info_bands_and_levels(sar_scene):
    path, data = sar_scene
    with open_scene(path) as scene:
        info = scene.info()
        json.dumps(info)  # JSON-able
        assert (info["width"], info["height"], info["count"], info["dtype"]) == (512, 512, 2, "float32")
        assert info["crs"] == "EPSG:32631"
        assert info["transform"] == [500000.0, 10.0, 0.0, 5700000.0, 0.0, -10.0]  # GDAL order
        assert info["overviews"] == [2, 4, 8]
        assert info["overview_source"] == "internal" and info["georeferenced"] is True
        assert info["quantity"] == "intensity" and info["nodata"] is None
        assert scene.bands == (BandInfo(0, "Sigma0_VV", "Sigma0_VV", "VV"), BandInfo(1, "Sigma0_VH", "Sigma0_VH", "VH"))
        assert scene.levels == (Level(0, 1, 512, 512), Level(1, 2, 256, 256), Level(2, 4, 128, 128),
                                Level(3, 8, 64, 64))
        assert scene.name == "sar_scene.tif" and not scene.is_complex and scene.warnings == []
        assert "UTM zone 31N" in scene.crs_wkt


def test_band_index(sar_scene):
    with open_scene(sar_scene[0]) as scene:
        assert scene.band_index("VV") == 0 and scene.band_index("vh") == 1
        assert scene.band_index("sigma0_vh") == 1 and scene.band_index(1) == 1 and scene.band_index("band 2") == 1
        with pytest.raises(SarlangError, match="HH"):
            scene.band_index("HH")
        with pytest.raises(SarlangError, match="2 band"):
            scene.band_index(2)


def test_read_full_res_and_overview_windows(sar_scene):
    path, data = sar_scene
    with open_scene(path) as scene:
        win = Window(100, 37, 200, 150)
        np.testing.assert_array_equal(scene.read("VH", win), data[1, 37:187, 100:300])
        np.testing.assert_array_equal(scene.read(0), data[0])
        for level in (1, 2, 3):
            with rasterio.open(path, overview_level=level - 1) as ov:
                expected = ov.read(2)
            out = scene.read(1, None, level)
            assert out.dtype == np.float32 and out.shape == expected.shape
            np.testing.assert_array_equal(out, expected)  # an exact read of the stored overview
            np.testing.assert_array_equal(scene.read(1, Window(5, 7, 30, 20), level), expected[7:27, 5:35])
        # and the stored overview is the 2x2 mean of the data
        mean2 = data[0].reshape(256, 2, 256, 2).mean(axis=(1, 3))
        np.testing.assert_allclose(scene.read(0, None, 1), mean2, rtol=1e-5)


def test_read_rejects_windows_outside_and_bad_arguments(sar_scene):
    with open_scene(sar_scene[0]) as scene:
        for win in (Window(-1, 0, 10, 10), Window(500, 0, 20, 10), Window(0, 0, 257, 10)):
            with pytest.raises(SarlangError, match="read_padded"):
                scene.read(0, win, 1 if win.width == 257 else 0)
        with pytest.raises(SarlangError, match="level"):
            scene.read(0, None, 4)
        with pytest.raises(SarlangError, match="complex_as"):
            scene.read(0, complex_as="phase")


def test_read_padded_at_edges(sar_scene):
    path, data = sar_scene
    with open_scene(path) as scene:
        out = scene.read_padded(0, Window(-3, -2, 10, 8))
        assert out.shape == (8, 10)
        assert np.isnan(out[:2]).all() and np.isnan(out[:, :3]).all()
        np.testing.assert_array_equal(out[2:, 3:], data[0, :6, :7])
        lv = scene.levels[2]
        out = scene.read_padded(1, Window(lv.width - 4, lv.height - 4, 10, 10), 2)
        assert out.shape == (10, 10) and np.isnan(out[4:]).all() and np.isnan(out[:, 4:]).all()
        np.testing.assert_array_equal(out[:4, :4], scene.read(1, None, 2)[-4:, -4:])
        assert np.isnan(scene.read_padded(0, Window(1000, 1000, 5, 5))).all()
        inside = Window(10, 10, 20, 20)
        np.testing.assert_array_equal(scene.read_padded(0, inside), scene.read(0, inside))


def test_level_for_zoom(sar_scene):
    with open_scene(sar_scene[0]) as scene:
        assert scene.level_for_zoom(2.0) == 0
        assert scene.level_for_zoom(1.0) == 0
        assert scene.level_for_zoom(0.6) == 0
        assert scene.level_for_zoom(0.5) == 1
        assert scene.level_for_zoom(0.3) == 1
        assert scene.level_for_zoom(0.25) == 2
        assert scene.level_for_zoom(0.01) == 3


def test_pixel_map_lonlat(sar_scene):
    with open_scene(sar_scene[0]) as scene:
        assert scene.pixel_to_map(0, 0) == (500000.0, 5700000.0)
        assert scene.pixel_to_map(0.5, 0.5) == (500005.0, 5699995.0)  # centre of the first pixel
        assert scene.map_to_pixel(500015.0, 5699985.0) == (1.5, 1.5)
        lon, lat = scene.pixel_to_lonlat(0, 0)
        # 500 000 m easting is UTM 31N's central meridian, 3 deg E; 5 700 km north is ~51.45 deg N
        assert lon == pytest.approx(3.0, abs=1e-9)
        assert lat == pytest.approx(51.451, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(col=st.floats(-1e4, 1e5), row=st.floats(-1e4, 1e5))
def test_pixel_map_round_trip(sar_scene, col, row):
    path = sar_scene[0]
    scene = _cached_open(path)
    x, y = scene.pixel_to_map(col, row)
    c2, r2 = scene.map_to_pixel(x, y)
    assert c2 == pytest.approx(col, abs=1e-6) and r2 == pytest.approx(row, abs=1e-6)


_OPEN = {}


def _cached_open(path):
    if path not in _OPEN:
        _OPEN[path] = open_scene(path)
    return _OPEN[path]


def test_rotated_transform_round_trip(make_scene):
    tr = Affine(8.0, 3.0, 400000.0, 2.0, -9.0, 6000000.0)
    path, _ = make_scene("rot.tif", h=32, w=32, bands=1, transform=tr, overviews=())
    with open_scene(path) as scene:
        for col, row in ((0, 0), (10.25, 3.5), (31.9, 0.1)):
            assert scene.map_to_pixel(*scene.pixel_to_map(col, row)) == pytest.approx((col, row))


def test_gcp_scene_has_lonlat(tmp_path):
    from .conftest import write_gcp_scene

    path = tmp_path / "gcps.tif"
    write_gcp_scene(path)
    with open_scene(path) as scene:
        assert scene.georeferenced and scene.transform == Affine.identity() and scene.info()["gcps"] == 4
        lon, lat = scene.pixel_to_lonlat(49.5, 49.5)
        assert lon == pytest.approx(3.1, abs=0.01) and lat == pytest.approx(50.95, abs=0.01)
        assert scene.map_to_pixel(*scene.pixel_to_map(20.5, 70.25)) == pytest.approx((20.5, 70.25), abs=1e-3)


def test_not_georeferenced_geotiff(make_scene):
    path, data = make_scene("plain.tif", h=64, w=48, bands=1, crs=None, overviews=())
    with open_scene(path) as scene:
        assert scene.crs is None and scene.transform == Affine.identity() and not scene.georeferenced
        assert scene.pixel_to_lonlat(1, 1) is None and scene.info()["crs"] is None
        assert scene.pixel_to_map(3.5, 4.5) == (3.5, 4.5)


def test_concurrent_reads_from_four_threads(sar_scene):
    path, data = sar_scene
    scene = open_scene(path)
    expected = {lv.index: [scene.read(b, None, lv.index) for b in range(2)] for lv in scene.levels}
    errors = []

    def worker(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(60):
                lv = scene.levels[rng.integers(len(scene.levels))]
                b = int(rng.integers(2))
                w, h = int(rng.integers(1, lv.width + 1)), int(rng.integers(1, lv.height + 1))
                c, r = int(rng.integers(0, lv.width - w + 1)), int(rng.integers(0, lv.height - h + 1))
                out = scene.read(b, Window(c, r, w, h), lv.index)
                if not np.array_equal(out, expected[lv.index][b][r:r + h, c:c + w]):
                    errors.append((lv, b, c, r, w, h))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(scene._handles._all) >= 4 * 2  # each thread opened its own datasets
    scene.close()
    with pytest.raises(SarlangError, match="closed"):
        scene.read(0, Window(0, 0, 4, 4))
