"""`sarlang-cli export-onnx` then `ask` in real processes: the export registered under a name, the
same answer as torch on the sample scene, and the export answering in a process where torch,
transformers and peft cannot be imported (what the field build has)."""

import json
import os
import subprocess
import sys

from sarlang_core.resources import sample_scene_path

CLI = [sys.executable, "-m", "sarlang_core.cli"]
NO_TORCH = ("import sys\n"
            "for name in ('torch', 'transformers', 'peft', 'accelerate'):\n"
            "    sys.modules[name] = None\n"
            "from sarlang_core.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")


def run(*args, env=None, without_torch=False):
    cmd = [sys.executable, "-c", NO_TORCH] if without_torch else CLI
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_export_register_and_ask_without_torch(tmp_path, tiny_qwen, tiny_lora):
    env = {"SARLANG_MODELS": str(tmp_path / "models.json")}
    out = run("export-onnx", tiny_qwen, "--adapter", tiny_lora, "--out", tmp_path / "onnx", "--register", "field",
              env=env)
    assert out.returncode == 0, out.stderr
    done = json.loads(out.stdout)
    assert done["registered_as"] == "field" and done["check"]["max_logit_diff"] < 1e-4
    question = ["ask", sample_scene_path(), "How many ships are there?", "--max-new-tokens", "16"]
    by_torch = run(*question, "--model", tiny_qwen, "--adapter", tiny_lora, env=env)
    by_onnx = run(*question, "--model", "field", env=env, without_torch=True)
    assert by_torch.returncode == 0 and by_onnx.returncode == 0, by_torch.stderr + by_onnx.stderr
    assert by_onnx.stdout == by_torch.stdout and by_onnx.stdout.strip()
    listed = run("models", "--json", env=env, without_torch=True)
    (row,) = json.loads(listed.stdout)
    assert row["ok"] and row["kind"] == "onnx"
    again = run("export-onnx", tiny_qwen, "--out", tmp_path / "onnx", env=env)
    assert again.returncode == 1 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr
