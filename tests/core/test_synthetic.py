"""The synthetic SAR generator: determinism, statistics, geometry shared across polarisations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn
from sarlang_core.io import open_scene

REPO = Path(__file__).resolve().parents[2]


def test_reflectivity_is_deterministic_and_positive():
    a = syn.reflectivity_map(200, 300, seed=4)
    assert a.shape == (200, 300) and a.dtype == np.float32 and (a > 0).all() and np.isfinite(a).all()
    np.testing.assert_array_equal(a, syn.reflectivity_map(200, 300, seed=4))
    assert not np.array_equal(a, syn.reflectivity_map(200, 300, seed=5))


def test_scene_has_classes_targets_and_pol_contrast():
    vv = syn.reflectivity_scene(400, 400, seed=1, pol="VV")
    vh = syn.reflectivity_scene(400, 400, seed=1, pol="VH")
    np.testing.assert_array_equal(vv.labels, vh.labels)  # same geometry
    assert vv.targets == vh.targets and any(k == "ship" for _, _, k in vv.targets)
    present = set(np.unique(vv.labels).tolist())
    assert {syn.SEA, syn.FIELD, syn.URBAN} <= present
    sea = np.median(vv.reflectivity[vv.labels == syn.SEA])
    field = np.median(vv.reflectivity[vv.labels == syn.FIELD])
    urban = np.median(vv.reflectivity[vv.labels == syn.URBAN])
    assert sea < field < urban
    # cross-pol is darker, most of all over the sea
    ratio_sea = np.median(vh.reflectivity[vv.labels == syn.SEA]) / sea
    ratio_field = np.median(vh.reflectivity[vv.labels == syn.FIELD]) / field
    assert ratio_sea < ratio_field < 1
    for r, c, _kind in vv.targets:  # point targets stand out from their background
        assert vv.reflectivity[r, c] > 20 * sea


@pytest.mark.parametrize("looks", [1, 4])
def test_speckle_is_unit_mean_gamma(looks):
    n = syn.gamma_noise((400, 400), looks, seed=3)
    assert n.mean() == pytest.approx(1.0, abs=0.01)
    assert n.var() == pytest.approx(1.0 / looks, rel=0.05)
    r = np.full((10, 10), 2.0, np.float32)
    r[0, 0] = np.nan
    s = syn.speckle(r, looks, seed=3)
    assert np.isnan(s[0, 0]) and np.array_equal(s, syn.speckle(r, looks, seed=3), equal_nan=True)


def test_complex_slc_power():
    z = syn.complex_slc(np.full((300, 300), 4.0, np.float32), seed=1)
    assert z.dtype == np.complex64
    assert (np.abs(z) ** 2).mean() == pytest.approx(4.0, rel=0.03)


def test_write_scene_options(tmp_path):
    data = np.stack([syn.reflectivity_map(64, 80, 1)] * 2)
    p = syn.write_scene(tmp_path / "a.tif", data, nodata=-1, band_descriptions=("VV", "VH"),
                        tags={"quantity": "intensity"}, blocksize=32, overviews=(2, 4))
    with rasterio.open(p) as ds:
        assert ds.crs.to_epsg() == 32631 and ds.block_shapes[0] == (32, 32) and ds.overviews(1) == [2, 4]
        assert ds.nodata == -1 and ds.tags()["quantity"] == "intensity" and ds.res == (10.0, 10.0)
    q = syn.write_scene(tmp_path / "b.tif", data[0], crs=None, tiled=False, overviews=(), compress=None,
                        dtype="uint16")
    with rasterio.open(q) as ds:
        assert ds.crs is None and ds.count == 1 and ds.dtypes == ("uint16",) and ds.overviews(1) == []


def test_sample_scene_script_is_deterministic_and_sar_like(tmp_path):
    out = tmp_path / "sample.tif"
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_sample_scene.py"), str(out)], check=True,
                   capture_output=True)
    assert out.stat().st_size < 6.5 * 2**20
    shipped = REPO / "resources" / "sample_scene.tif"
    if shipped.exists():  # same pixels (bytes may differ with another zlib build)
        with open_scene(shipped) as a, open_scene(out) as b:
            assert a.info()["levels"] == b.info()["levels"]
            for band in range(2):
                stale = "resources/sample_scene.tif is stale: rerun the script"
                assert np.array_equal(a.read(band), b.read(band)), stale
    with open_scene(out) as scene:
        assert [b.polarisation for b in scene.bands] == ["VV", "VH"] and scene.quantity == "intensity"
        assert scene.crs.to_epsg() == 32631 and scene.overview_source == "internal" and scene.warnings == []
        db = 10 * np.log10(scene.read("VV", None, 1))
        lo, hi = np.percentile(db, [2, 98])
        assert -35 < lo < -15 and -10 < hi < 10
