"""write_geotiff_atomic: streaming, georeferencing, and never losing data."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn
from sarlang_core.errors import CancelledError, ExportError
from sarlang_core.io import Window, open_scene, write_geotiff_atomic
from sarlang_core.progress import CancelToken


def _tiles(data, tile=100):
    """Tiles in a scrambled order (the writer must not assume row order)."""
    b, h, w = data.shape
    wins = [Window(c, r, min(tile, w - c), min(tile, h - r)) for r in range(0, h, tile) for c in range(0, w, tile)]
    for win in wins[::-1]:
        yield win, data[:, win.row_off:win.row_off + win.height, win.col_off:win.col_off + win.width]


def test_streams_windows_and_keeps_georeferencing(sar_scene, tmp_path):
    src, data = sar_scene
    events = []
    with open_scene(src) as scene:
        out = write_geotiff_atomic(tmp_path / "out.tif", _tiles(data), width=scene.width, height=scene.height,
                                   count=2, dtype="float32", crs=scene.crs, transform=scene.transform,
                                   tags={"pipeline": '{"filter": "lee"}'}, band_descriptions=("VV", "VH"),
                                   overviews=(2, 4), progress=events.append, forbid=[src])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32631 and ds.transform == syn.default_transform()
        assert ds.tags()["pipeline"] == '{"filter": "lee"}' and ds.descriptions == ("VV", "VH")
        assert ds.block_shapes[0] == (256, 256) and ds.compression.name == "deflate"
        assert ds.overviews(1) == [2, 4]
        np.testing.assert_array_equal(ds.read(), data)
    dones = [e.done for e in events]
    assert dones == sorted(dones) and events[-1].done == events[-1].total == 512 * 512
    with open_scene(out) as scene:
        assert scene.band_index("VH") == 1 and scene.overview_source == "internal"


def test_array_input_with_profile(tmp_path):
    arr = np.arange(300 * 200, dtype=np.uint16).reshape(300, 200)
    profile = {"crs": "EPSG:32631", "transform": syn.default_transform(20.0), "blockxsize": 999}
    out = write_geotiff_atomic(tmp_path / "a.tif", arr, profile=profile, nodata=0)
    with rasterio.open(out) as ds:
        assert ds.dtypes == ("uint16",) and ds.nodata == 0 and ds.res == (20.0, 20.0)
        np.testing.assert_array_equal(ds.read(1), arr)


def test_refuses_to_overwrite_the_input(sar_scene, tmp_path, monkeypatch):
    src, data = sar_scene
    before = src.read_bytes()
    for target in (src, src.parent / "." / src.name):
        with pytest.raises(ExportError, match="input"):
            write_geotiff_atomic(target, data, overwrite=True, forbid=[src])
    link = tmp_path / "link.tif"
    link.symlink_to(src)
    with pytest.raises(ExportError, match="input"):
        write_geotiff_atomic(link, data, overwrite=True, forbid=[src])
    monkeypatch.chdir(src.parent)
    with pytest.raises(ExportError, match="input"):
        write_geotiff_atomic(src.name, data, overwrite=True, forbid=[str(src)])
    assert src.read_bytes() == before
    assert sorted(p.name for p in src.parent.iterdir()) == [src.name]


def test_existing_output_needs_overwrite(tmp_path):
    target = tmp_path / "o.tif"
    target.write_bytes(b"keep me")
    with pytest.raises(ExportError, match="already exists"):
        write_geotiff_atomic(target, np.ones((4, 4), np.float32))
    assert target.read_bytes() == b"keep me"
    write_geotiff_atomic(target, np.ones((4, 4), np.float32), overwrite=True)
    with rasterio.open(target) as ds:
        assert ds.read(1).sum() == 16


def test_error_mid_iterator_leaves_nothing(tmp_path):
    def failing():
        yield Window(0, 0, 64, 64), np.ones((64, 64), np.float32)
        raise RuntimeError("filter crashed")

    with pytest.raises(RuntimeError, match="filter crashed"):
        write_geotiff_atomic(tmp_path / "x.tif", failing(), width=128, height=128, count=1, dtype="float32")
    assert list(tmp_path.iterdir()) == []


def test_cancel_and_bad_block_leave_nothing(tmp_path):
    token = CancelToken()

    def gen():
        for r in range(0, 256, 64):
            if r == 128:
                token.cancel()
            yield Window(0, r, 256, 64), np.zeros((64, 256), np.float32)

    with pytest.raises(CancelledError):
        write_geotiff_atomic(tmp_path / "c.tif", gen(), width=256, height=256, count=1, dtype="float32",
                             cancel=token)
    with pytest.raises(ExportError, match="does not fit"):
        write_geotiff_atomic(tmp_path / "b.tif", iter([(Window(200, 0, 100, 10), np.zeros((10, 100)))]),
                             width=256, height=256, count=1, dtype="float32")
    with pytest.raises(ExportError, match="needs"):
        write_geotiff_atomic(tmp_path / "m.tif", iter([]), width=256)
    with pytest.raises(ExportError, match="does not exist"):
        write_geotiff_atomic(tmp_path / "no" / "m.tif", np.ones((2, 2), np.float32))
    assert list(tmp_path.iterdir()) == []
