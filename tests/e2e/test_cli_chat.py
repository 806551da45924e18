"""`sarlang-cli ask|caption|models` in a real process, against a real server on 127.0.0.1."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sarlang_core import synthetic as syn
from support.chat_server import serve

CLI = [sys.executable, "-m", "sarlang_core.cli"]


def run(*args, env=None):
    full = dict(os.environ, NO_PROXY="127.0.0.1,localhost", **(env or {}))
    full.pop("OPENAI_API_KEY", None)
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=full)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chat")
    bands = syn.speckle(syn.reflectivity_map(300, 400, 2), 1.0, 5)[np.newaxis]
    return syn.write_scene(folder / "scene.tif", bands, band_descriptions=("VV",))


def test_ask_streams_the_answer_and_writes_boxes_and_transcript(scene, tmp_path):
    with serve() as ep:
        ep.plan.append({"pieces": ['{"bbox_2d": [10, 20, 30, 40], ', '"label": "ship"}']})
        out = run("ask", scene, "Where is the ship?", "--endpoint", ep.url, "--model", "sar-vlm",
                  "--region", "100,50,200,100", "--max-new-tokens", "32",
                  "--geojson", tmp_path / "b.geojson", "--transcript", tmp_path / "t.json")
        body = ep.posts()[-1]["body"]
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '{"bbox_2d": [10, 20, 30, 40], "label": "ship"}'
    assert "scene pixels (110.0, 70.0) - (130.0, 90.0)" in out.stderr
    assert body["max_tokens"] == 32 and body["model"] == "sar-vlm"
    fc = json.loads((tmp_path / "b.geojson").read_text())
    assert fc["features"][0]["properties"]["label"] == "ship"
    t = json.loads((tmp_path / "t.json").read_text())
    ex = t["exchanges"][0]
    assert ex["source"] == "region" and ex["crop"] == [100.0, 50.0, 200.0, 100.0]
    assert t["pipeline"]["filter"]["name"] == "refined-lee" and ex["backend"]["endpoint"] == ep.url
    assert "sk-" not in (tmp_path / "t.json").read_text()


def test_caption_uses_the_papers_prompt(scene):
    with serve() as ep:
        out = run("caption", scene, "--endpoint", ep.url, "--model", "sar-vlm")
        body = ep.posts()[-1]["body"]
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "A ship is moored at the pier."
    texts = [c["text"] for c in body["messages"][-1]["content"] if c["type"] == "text"]
    assert texts == ["Describe the content of this image in one sentence."]


@pytest.mark.parametrize("args, needle", [
    (["--region", "5000,5000,10,10"], "outside the scene"),
    (["--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "127.0.0.1:9"),
    (["--model", "/no/such/folder"], "/no/such/folder"),
])
def test_errors_are_one_line(scene, args, needle):
    base = [] if "--endpoint" in args or "--model" in args else ["--endpoint", "http://127.0.0.1:9/v1", "--model", "m"]
    out = run("ask", scene, "What is this?", *base, *args)
    assert out.returncode == 1
    assert len(out.stderr.strip().splitlines()) == 1 and needle in out.stderr, out.stderr


def test_empty_question_is_refused(scene):
    out = run("ask", scene, "  ", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m")
    assert out.returncode == 1 and "empty" in out.stderr


def test_models_lists_the_registry(tmp_path):
    reg = tmp_path / "registry.json"
    reg.write_text(json.dumps({"models": [{"name": "ghost", "path": "missing-folder"}]}))
    out = run("models", "--registry", reg)
    assert out.returncode == 1 and "ghost" in out.stdout
