"""`sarlang-cli explain` in a real process: a tiny Qwen2.5-VL + LoRA adapter, a synthetic GeoTIFF,
a region; words.json, a georeferenced GeoTIFF and a PNG overlay per word; a served model refused."""

import json
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from sarlang_core import synthetic as syn

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_explain_writes_words_json_geotiffs_and_overlays(tmp_path):
    from sarlang_core.vlm.tiny import build_tiny_lora, build_tiny_qwen2_5_vl

    model = build_tiny_qwen2_5_vl(tmp_path / "tiny")
    adapter = build_tiny_lora(model, tmp_path / "lora", seed=1)
    bands = syn.speckle(syn.reflectivity_map(300, 400, 2), 1.0, 5)[np.newaxis]
    scene = syn.write_scene(tmp_path / "scene.tif", bands, band_descriptions=("VV",))
    out = run("explain", scene, "Where is the ship?", "--model", model, "--adapter", adapter,
              "--answer", "A ship near the harbor.", "--words", "ship,harbor", "--region", "100,50,200,120",
              "--method", "gradcam", "--out", tmp_path / "maps")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "A ship near the harbor."
    doc = json.loads((tmp_path / "maps" / "words.json").read_text())
    assert doc["method"] == "gradcam" and doc["adapter_used"] is True and doc["generated"] is False
    assert doc["crop"] == [100.0, 50.0, 200.0, 120.0] and doc["grid_rect"] == [100.0, 50.0, 300.0, 170.0]
    assert [w["text"] for w in doc["words"]] == ["ship", "harbor"]
    with rasterio.open(scene) as src:
        crs, transform = src.crs, src.transform
    for w in doc["words"]:
        x, y = w["peak_pixel"]
        assert 100 <= x <= 300 and 50 <= y <= 170 and w["tokens"][1] > w["tokens"][0]
        assert w["peak_map"] == pytest.approx(list(transform @ (x, y)))
        with rasterio.open(tmp_path / "maps" / w["geotiff"]) as ds:
            assert ds.crs == crs and ds.transform == transform and ds.dtypes == ("float32",)
            band = ds.read(1)
            assert (band[:50] == ds.nodata).all() and (band[50:170, 100:300] >= 0).all()
        assert (tmp_path / "maps" / w["png"]).read_bytes()[:4] == b"\x89PNG"
    assert "'ship': peak" in out.stderr


def test_a_served_model_is_refused_with_the_reason(tmp_path):
    scene = syn.write_scene(tmp_path / "s.tif", syn.speckle(syn.reflectivity_map(64, 64, 1), 1.0, 2)[None])
    out = run("explain", scene, "Where?", "--endpoint", "http://127.0.0.1:9/v1", "--model", "sar", "--out", tmp_path)
    assert out.returncode == 1
    assert "served model" in out.stderr and "no gradients" in out.stderr
    assert not (tmp_path / "words.json").exists()
