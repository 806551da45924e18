"""`sarlang-cli preprocess` on awkward inputs (issue 10): dB scenes and all-nodata scenes."""

import subprocess
import sys

import numpy as np
import rasterio

from sarlang_core import synthetic as syn

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_preprocess_warns_on_db_input_and_quantity_db_takes_the_log_once(tmp_path):
    rng = np.random.default_rng(2)
    linear = (rng.gamma(1.0, 1.0, (128, 128)) * np.linspace(0.02, 0.2, 128)[None, :]).astype(np.float32)
    path = syn.write_scene(tmp_path / "db.tif", (10 * np.log10(linear))[None], band_descriptions=("Sigma0_VV_db",))
    plain = run("preprocess", path, tmp_path / "plain.tif", "--quiet")
    assert plain.returncode == 0
    assert "warning:" in plain.stderr and "decibels" in plain.stderr and "--quantity db" in plain.stderr
    fixed = run("preprocess", path, tmp_path / "fixed.tif", "--quantity", "db", "--quiet")
    assert fixed.returncode == 0 and "warning" not in fixed.stderr, fixed.stderr
    with rasterio.open(tmp_path / "plain.tif") as a, rasterio.open(tmp_path / "fixed.tif") as b:
        assert a.read(1).std() < 5 < b.read(1).std()           # flat grey before, a real image with db


def test_preprocess_refuses_an_all_nodata_scene(tmp_path):
    path = syn.write_scene(tmp_path / "empty.tif", np.full((1, 64, 64), -9999.0, np.float32),
                           band_descriptions=("VV",), nodata=-9999.0)
    out = tmp_path / "out" / "empty_out.tif"
    out.parent.mkdir()
    res = run("preprocess", path, out, "--quiet")
    assert res.returncode == 1
    assert "every pixel of band VV is nodata" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(out.parent.iterdir()) == []
