"""`sarlang-cli` as a user runs it: a real process, real files, exit codes and one-line errors."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn
from sarlang_core.preprocess import refined_lee

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def run(*args, **kw):
    env = dict(os.environ, SARLANG_CACHE_DIR=kw.pop("cache", os.environ.get("SARLANG_CACHE_DIR", "")))
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    bands = np.stack([syn.speckle(syn.reflectivity_map(300, 280, 3, pol=p), 1.0, 7 + i)
                      for i, p in enumerate(("VV", "VH"))])
    bands[0, :5, :5] = -9999.0
    path = syn.write_scene(folder / "scene.tif", bands, band_descriptions=("VV", "VH"), nodata=-9999.0)
    return path, bands


def test_info_prints_json(scene):
    path, bands = scene
    out = run("info", path)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert (info["width"], info["height"], info["count"]) == (280, 300, 2)
    assert info["dtype"] == "float32" and info["nodata"] == -9999.0
    assert "32631" in str(info["crs"]) and len(info["transform"]) == 6
    assert isinstance(info["overviews"], list)


def test_preprocess_default_chain_writes_georeferenced_uint8(scene, tmp_path):
    path, _ = scene
    out_path = tmp_path / "out.tif"
    out = run("preprocess", path, out_path, "--band", "VH")
    assert out.returncode == 0, out.stderr
    with rasterio.open(out_path) as ds, rasterio.open(path) as src:
        assert ds.dtypes[0] == "uint8" and ds.crs == src.crs and ds.transform == src.transform
        assert ds.profile.get("tiled") or ds.block_shapes[0][0] < ds.height
        pipe = json.loads(ds.tags()["SARLANG_PIPELINE"])
        assert pipe["band"] == "VH" and pipe["filter"]["name"] == "refined-lee"
        img = ds.read(1)
        assert ds.nodata == 0                      # valid pixels are 1..255 (issue 10 case 9)
    # 2-98 % stretch: about 2 % of the pixels at each end
    assert 0.005 < np.mean(img == 1) < 0.06 and 0.005 < np.mean(img == 255) < 0.06 and not (img == 0).any()


def test_no_db_no_stretch_writes_the_float32_filtered_band(scene, tmp_path):
    path, bands = scene
    out_path = tmp_path / "filtered.tif"
    out = run("preprocess", path, out_path, "--band", "0", "--filter", "refined-lee", "--no-db", "--stretch", "none")
    assert out.returncode == 0, out.stderr
    with rasterio.open(out_path) as ds:
        assert ds.dtypes[0] == "float32"
        got = ds.read(1)
    band = bands[0].copy()
    band[band == -9999.0] = np.nan
    expected = refined_lee(band)
    valid = ~np.isnan(expected)
    assert np.isnan(got[:5, :5]).all()
    np.testing.assert_allclose(got[valid], expected[valid], rtol=1e-5)


def test_pipeline_file_and_flag_overrides(scene, tmp_path):
    path, _ = scene
    recipe = tmp_path / "p.json"
    recipe.write_text(json.dumps({"filter": {"name": "lee", "window": 5, "looks": 2.0}, "db": True}))
    out_path = tmp_path / "lee.tif"
    out = run("preprocess", path, out_path, "--pipeline", recipe, "--window", "9", "--stretch", "1,99")
    assert out.returncode == 0, out.stderr
    with rasterio.open(out_path) as ds:
        pipe = json.loads(ds.tags()["SARLANG_PIPELINE"])
    assert pipe["filter"] == {"name": "lee", "window": 9, "looks": 2.0, "damping": 2.0, "snap_exact": False}
    assert pipe["stretch"]["low"] == 1.0 and pipe["stretch"]["high"] == 99.0


@pytest.mark.parametrize("args, code, needle", [
    (["preprocess", "{missing}", "{out}"], 1, "missing.tif"),
    (["preprocess", "{text}", "{out}"], 1, "notes.tif"),
    (["preprocess", "{scene}", "{out}", "--band", "HH"], 1, "HH"),
    (["preprocess", "{scene}", "{out}", "--filter", "lee", "--window", "4"], 1, "odd"),
    (["preprocess", "{scene}", "{out}", "--stretch", "98,2"], 1, "low < high"),
    (["preprocess", "{scene}", "{scene}"], 1, "input"),
    (["preprocess", "{scene}", "{out}", "--filter", "gauss"], 2, "invalid choice"),
    (["frobnicate"], 2, "usage"),
])
def test_errors_are_one_line_with_exit_codes(scene, tmp_path, args, code, needle):
    path, _ = scene
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    subs = {"{missing}": tmp_path / "missing.tif", "{text}": text, "{out}": tmp_path / "o.tif", "{scene}": path}
    before = Path(path).read_bytes()
    out = run(*[subs.get(a, a) for a in args])
    assert out.returncode == code, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert needle.lower() in lines[0].lower()
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "o.tif").exists()
    assert Path(path).read_bytes() == before  # the input is never touched


def test_debug_shows_the_traceback(tmp_path):
    out = run("--debug", "info", tmp_path / "missing.tif")
    assert out.returncode != 0 and "Traceback" in out.stderr


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out"])
def test_output_name_of_another_format_is_refused(tmp_path, name):
    src = tmp_path / "in.npy"
    np.save(src, np.random.default_rng(0).random((64, 64), dtype=np.float32) + 1)
    out = run("preprocess", src, tmp_path / name)
    assert out.returncode == 1, out.stderr
    line = out.stderr.strip()
    assert "\n" not in line and name in line and ".tif" in line and ".tiff" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npy"]


def test_existing_output_error_names_the_flag(scene, tmp_path):
    path, _ = scene
    target = tmp_path / "o.tif"
    target.write_bytes(b"keep me")
    out = run("preprocess", path, target)
    assert out.returncode == 1 and "--overwrite" in out.stderr and str(target) in out.stderr
    assert target.read_bytes() == b"keep me"
    out = run("preprocess", path, target, "--overwrite", "--filter", "none")
    assert out.returncode == 0, out.stderr
    with rasterio.open(target) as ds:
        assert ds.dtypes[0] == "uint8"


@pytest.mark.parametrize("args", [("preprocess", "--debug", "{m}", "{o}"), ("info", "{m}", "--debug"),
                                  ("--debug", "info", "{m}")])
def test_debug_after_the_subcommand_too(tmp_path, args):
    subs = {"{m}": tmp_path / "missing.tif", "{o}": tmp_path / "o.tif"}
    out = run(*[subs.get(a, a) for a in args])
    assert out.returncode != 0 and "Traceback" in out.stderr and "missing.tif" in out.stderr
    plain = run(*[subs.get(a, a) for a in args if a != "--debug"])
    assert plain.returncode == 1 and "Traceback" not in plain.stderr


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_preprocess_output_follows_the_umask(scene, tmp_path, mask, mode):
    path, _ = scene
    target = tmp_path / "shared.tif"
    env = dict(os.environ, SARLANG_CACHE_DIR=os.environ.get("SARLANG_CACHE_DIR", ""))
    res = subprocess.run([*CLI, "preprocess", str(path), str(target), "--filter", "none"], capture_output=True,
                         text=True, timeout=300, env=env, preexec_fn=lambda: os.umask(mask))
    assert res.returncode == 0, res.stderr
    assert stat.S_IMODE(target.stat().st_mode) == mode


def test_version_names_the_variant_without_importing_torch():
    import importlib.metadata

    from sarlang_core import __version__

    out = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (f"sarlang-cli {__version__} · full (torch {importlib.metadata.version('torch')}) "
                                  "· from source")
    code = "import sys; from sarlang_core.cli import version_line; version_line(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
