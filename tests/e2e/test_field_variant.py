"""The field variant's paths in source, with torch and its family made unimportable (a meta-path
blocker in the child process): they work and never import torch; what needs the full variant
says so in one sentence instead of an ImportError."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "resources" / "sample_scene.tif"

BLOCKED_RUN = r"""
import sys
BLOCKED = {"torch", "torchvision", "transformers", "peft", "accelerate", "sentence_transformers"}
import importlib.machinery as machinery
_find = machinery.PathFinder.find_spec
def find_spec(fullname, path=None, target=None):   # as if not installed: no finder sees them
    return None if fullname.split(".")[0] in BLOCKED else _find(fullname, path, target)
machinery.PathFinder.find_spec = find_spec
from sarlang_core.cli import main
code = main(sys.argv[1:])
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("LEAKED:" + ",".join(leaked), file=sys.stderr)
sys.exit(code)
"""


def field_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_version_says_field():
    r = field_cli("--version")
    assert r.returncode == 0 and "· field (no torch" in r.stdout


def test_scene_and_scoring_work_without_torch(tmp_path):
    r = field_cli("info", SAMPLE)
    assert r.returncode == 0 and "LEAKED:\n" in r.stderr + "\n", r.stderr
    out = tmp_path / "p.tif"
    r = field_cli("preprocess", SAMPLE, out)
    assert r.returncode == 0 and out.is_file(), r.stderr
    preds = tmp_path / "generated_predictions.jsonl"
    preds.write_text(json.dumps({"question": "How many?", "label": "2", "predict": "2", "type": "counting"}) + "\n")
    r = field_cli("bench", "score-vqa", preds)
    assert r.returncode == 0 and json.loads(r.stdout)["correct"] == 1, r.stderr
    assert r.stderr.strip().endswith("LEAKED:")


def test_asking_a_torch_model_folder_says_it_needs_the_full_variant(tiny_qwen):
    r = field_cli("ask", SAMPLE, "What is it?", "--model", tiny_qwen)
    assert r.returncode == 1 and "a local transformers model needs the full variant" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stderr.strip().endswith("LEAKED:")


GUARDED = {
    "fine-tuning": "from sarlang_core.train.engine import train; train(OUT)",
    "merging an adapter": "from sarlang_core.train.merge import merge_adapter; merge_adapter(OUT, OUT, OUT)",
    "text similarity": "from sarlang_core.datasets.similarity import _default_model; _default_model()",
    "per-word maps": "from sarlang_core.explain.engine import explain_answer; "
                     "explain_answer(None, None, 'qwen2_5_vl', None, [1], image_size=(28, 28))",
}


@pytest.mark.parametrize("feature", sorted(GUARDED))
def test_full_only_features_raise_a_typed_error_naming_the_full_variant(tmp_path, feature):
    code = BLOCKED_RUN.split("from sarlang_core.cli import main")[0] + f"""
from sarlang_core.errors import SarlangError
OUT = {str(tmp_path / "x")!r}
try:
    {GUARDED[feature]}
except SarlangError as exc:
    print(type(exc).__name__ + ": " + str(exc))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{feature}" in r.stdout and "needs the full variant" in r.stdout, r.stdout
    assert not (tmp_path / "x").exists()
