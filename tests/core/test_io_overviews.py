"""Overviews built into the per-user cache never touch the user's file or its folder."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn
from sarlang_core.errors import CancelledError, SarlangError, UnsupportedSceneError
from sarlang_core.io import Window, build_overviews, cache_root, open_scene
from sarlang_core.progress import CancelToken


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listing(folder):
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir())


def _nan_block_mean(a, f):
    h, w = a.shape
    p = np.full((-(-h // f) * f, -(-w // f) * f), np.nan)
    p[:h, :w] = a
    blocks = p.reshape(p.shape[0] // f, f, p.shape[1] // f, f)
    with np.errstate(invalid="ignore"):
        return np.nansum(blocks, axis=(1, 3)) / np.sum(~np.isnan(blocks), axis=(1, 3))


@pytest.fixture
def user_dir(tmp_path):
    d = tmp_path / "user_data"
    d.mkdir()
    return d


def test_cache_overviews_leave_the_file_and_folder_untouched(user_dir, tmp_path):
    data = np.stack([syn.speckle(syn.reflectivity_map(300, 520, 1), 1, 2)] * 2)
    data[0, 5:9, 7:30] = -1  # nodata is left out of the means
    path = syn.write_scene(user_dir / "scene.tif", data, nodata=-1, overviews=(), band_descriptions=("VV", "VH"))
    before, listing = _digest(path), _listing(user_dir)
    events = []
    vrt = build_overviews(path, factors=(2, 4, 8), progress=events.append)
    assert _digest(path) == before and _listing(user_dir) == listing
    assert vrt.parent == cache_root() / "overviews" and str(tmp_path) in str(vrt)
    assert {p.suffix for p in vrt.parent.iterdir()} == {".vrt", ".tif"} and len(list(vrt.parent.iterdir())) == 4
    # progress: one stage, monotonic, ends complete
    assert {e.stage for e in events} == {"overviews"}
    dones = [e.done for e in events]
    assert dones == sorted(dones) and events[-1].done == events[-1].total == 2 * 300
    with open_scene(path) as scene:
        assert scene.overview_source == "cache"
        assert [(lv.factor, lv.width, lv.height) for lv in scene.levels] == [
            (1, 520, 300), (2, 260, 150), (4, 130, 75), (8, 65, 38)]
        ref = np.where(data[0] == -1, np.nan, data[0])
        for level, f in ((1, 2), (3, 8)):
            np.testing.assert_allclose(scene.read(0, None, level), _nan_block_mean(ref, f), rtol=1e-5)
        np.testing.assert_allclose(scene.read("VH", Window(10, 20, 30, 40), 1),
                                   _nan_block_mean(data[1], 2)[20:60, 10:40], rtol=1e-5)
    with rasterio.open(vrt) as ds:  # a VRT any GDAL tool opens, with its overviews
        assert ds.overviews(1) == [2, 4, 8] and ds.crs.to_epsg() == 32631
    assert _digest(path) == before and _listing(user_dir) == listing


def test_refresh_switches_to_cache(user_dir, monkeypatch):
    from sarlang_core.io import gdal_scene
    monkeypatch.setattr(gdal_scene, "MEMORY_PYRAMID_MAX_PIXELS", 1000)
    path = syn.write_scene(user_dir / "s.tif", syn.reflectivity_map(128, 600, 3)[None], overviews=())
    with open_scene(path) as scene:
        assert scene.overview_source == "none" and any("no overviews" in w for w in scene.warnings)
        build_overviews(scene, factors=(2, 4))
        assert scene.overview_source == "none"  # the scene passed in is left alone...
        scene.refresh_overviews()                # ...until asked
        assert scene.overview_source == "cache" and [lv.factor for lv in scene.levels] == [1, 2, 4]
        assert not any("no overviews" in w for w in scene.warnings)
        assert scene.read(0, None, 2).shape == (32, 150)


def test_cancel_removes_everything(user_dir):
    path = syn.write_scene(user_dir / "c.tif", np.ones((3, 64, 700), np.float32), overviews=())
    before = _digest(path)
    token = CancelToken()

    def progress(p):
        if p.done > 0:
            token.cancel()

    with pytest.raises(CancelledError):
        build_overviews(path, factors=(2, 4), progress=progress, cancel=token)
    folder = cache_root() / "overviews"
    assert not folder.exists() or list(folder.iterdir()) == []
    assert _digest(path) == before
    with open_scene(path) as scene:
        assert scene.overview_source == "memory"


def test_complex_overviews_hold_mean_intensity(user_dir):
    z = syn.complex_slc(syn.reflectivity_map(96, 128, 4), seed=5)
    path = syn.write_scene(user_dir / "slc.tif", z, dtype="complex64", overviews=())
    build_overviews(path, factors=(2, 4))
    intensity = z.real.astype(np.float64) ** 2 + z.imag.astype(np.float64) ** 2
    with open_scene(path) as scene:
        assert scene.is_complex and scene.overview_source == "cache"
        np.testing.assert_allclose(scene.read(0, None, 1), _nan_block_mean(intensity, 2), rtol=1e-5)
        np.testing.assert_allclose(scene.read(0, None, 2, complex_as="amplitude"),
                                   np.sqrt(_nan_block_mean(intensity, 4)), rtol=1e-5)
        np.testing.assert_allclose(scene.read(0), intensity, rtol=1e-5)


def test_edited_file_does_not_reuse_stale_cache(user_dir):
    path = syn.write_scene(user_dir / "e.tif", np.ones((1, 64, 64), np.float32), overviews=())
    build_overviews(path, factors=(2,))
    with open_scene(path) as scene:
        assert scene.overview_source == "cache"
    syn.write_scene(path, np.full((1, 64, 64), 2, np.float32), overviews=())
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse clocks
    with open_scene(path) as scene:
        assert scene.overview_source == "none" and scene.read(0, None, 0)[0, 0] == 2


def test_sidecar_only_when_asked(user_dir):
    path = syn.write_scene(user_dir / "side.tif", syn.reflectivity_map(64, 300, 1)[None], overviews=())
    before = _digest(path)
    ovr = build_overviews(path, factors=(2, 4), sidecar=True)
    assert ovr == user_dir / "side.tif.ovr" and ovr.exists() and _digest(path) == before
    assert sorted(p.name for p in user_dir.iterdir()) == ["side.tif", "side.tif.ovr"]
    with open_scene(path) as scene:
        assert scene.overview_source == "sidecar" and [lv.factor for lv in scene.levels] == [1, 2, 4]
    with pytest.raises(SarlangError, match="exists"):
        build_overviews(path, factors=(2,), sidecar=True)


def test_refusals(user_dir, tmp_path):
    one = syn.write_scene(user_dir / "one.tif", np.ones((1, 1, 1), np.float32), overviews=())
    with pytest.raises(SarlangError, match="needs no overviews"):
        build_overviews(one)
    np.save(user_dir / "a.npy", np.ones((600, 600), np.float32))
    with pytest.raises(UnsupportedSceneError, match="in memory"):
        build_overviews(user_dir / "a.npy")
    s = syn.write_scene(user_dir / "s.tif", np.ones((1, 64, 64), np.float32), overviews=())
    for bad in ((3, 4), (4, 2), (1,)):
        with pytest.raises(SarlangError, match="factors"):
            build_overviews(s, factors=bad)
    with pytest.raises(SarlangError, match="resampling"):
        build_overviews(s, resampling="cubic")
    assert not (cache_root() / "overviews").exists() or not list((cache_root() / "overviews").glob("*.vrt"))


def test_damaged_cache_entry_is_ignored(user_dir):
    from sarlang_core.io import cache_vrt_path
    path = syn.write_scene(user_dir / "d.tif", np.ones((1, 64, 64), np.float32), overviews=(2,))
    vrt = cache_vrt_path(path)
    vrt.parent.mkdir(parents=True)
    vrt.write_text("<VRTDataset broken")
    with open_scene(path) as scene:
        assert scene.overview_source == "internal" and any("damaged" in w for w in scene.warnings)
        assert scene.read(0, None, 1).shape == (32, 32)
