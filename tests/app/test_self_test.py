"""`sarlang --self-test` in a real process, offscreen: the install check a technician runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _self_test(tmp_path, registry=None, *extra):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SARLANG_SETTINGS_DIR=str(tmp_path / "settings"),
               SARLANG_CACHE_DIR=str(tmp_path / "cache"), SARLANG_LOG_DIR=str(tmp_path / "logs"))
    if registry is not None:
        env["SARLANG_MODELS"] = str(registry)
    return subprocess.run([sys.executable, "-m", "app", "--self-test", *extra], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=300)


def _registry(tmp_path, folder):
    reg = tmp_path / "models.json"
    reg.write_text(json.dumps({"models": [{"name": "tiny", "path": str(folder)}]}))
    return reg


def test_self_test_passes_and_asks_the_registered_model(tmp_path, tiny_qwen):
    shot = tmp_path / "shot" / "self-test.png"
    r = _self_test(tmp_path, _registry(tmp_path, tiny_qwen), "--screenshot", str(shot))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "self-test passed"
    assert [ln.split(":")[0] for ln in lines[:-1]] == ["ok   sample", "ok   window", "ok   model"]
    assert "refined Lee" in lines[0] and "model 'tiny' answered" in lines[2]
    import numpy as np
    from PIL import Image

    with Image.open(shot) as im:
        assert im.width >= 800 and len(np.unique(np.asarray(im.convert("L")))) > 20   # a real window, not a blank


def test_self_test_without_a_model_skips_that_check(tmp_path):
    r = _self_test(tmp_path, _empty := tmp_path / "none.json")  # noqa: F841
    assert r.returncode == 1 and "model registry cannot be read" in r.stdout   # asked for by name: must exist
    (tmp_path / "none.json").write_text('{"models": []}')
    r = _self_test(tmp_path, tmp_path / "none.json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok   model: skipped: no model registered" in r.stdout


def test_self_test_fails_on_a_broken_model_and_says_why(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "qwen2_5_vl"}')    # no weights
    r = _self_test(tmp_path, _registry(tmp_path, broken))
    assert r.returncode == 1
    assert r.stdout.strip().splitlines()[-1].startswith("self-test failed: model: model 'tiny' could not answer")
    assert "no weights" in r.stdout
