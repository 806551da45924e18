"""`torchrun --nproc_per_node 2 -m sarlang_core.cli train run|resume` on a CPU (gloo): both ranks
train, rank 0 alone writes the run folder and prints the events, and every rank exits 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sarlang_core.train import runs
from sarlang_core.train.demo import write_toy_dataset as write_toy_json

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "sarlang_core.cli", "train"]


def torchrun(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TORCHRUN, *map(str, args)], capture_output=True, text=True, timeout=180, env=env)


@pytest.fixture
def model(tiny_qwen):
    """The session's tiny Qwen2.5-VL (tests/support/tiny_models.py)."""
    return tiny_qwen


def test_two_ranks_train_and_resume_with_one_event_stream(model, tmp_path):
    toy = write_toy_json(tmp_path / "toy")
    run = tmp_path / "run"
    done = torchrun("run", "--model", model, "--dataset", toy, "--out", run, "--max-steps", 2, "--grad-accum", 1,
                    "--save-every", 2, "--progress-jsonl")
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]          # once, not once per rank
    assert [e for e in events if e["event"] == "start"][0]["world_size"] == 2
    assert runs.read_state(run)["status"] == "finished"
    assert (run / runs.ADAPTER / "adapter_model.safetensors").is_file()
    assert len([e for e in runs.read_events(run) if e["event"] == "step"]) == 2

    state = json.loads((run / runs.STATE).read_text())      # a finished run: make it resumable for 2 more steps
    state["status"] = "stopped"
    (run / runs.STATE).write_text(json.dumps(state))
    config = json.loads((run / runs.CONFIG).read_text())
    (run / runs.CONFIG).write_text(json.dumps({**config, "max_steps": 4}))
    resumed = torchrun("resume", run, "--progress-jsonl")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    steps = [json.loads(x)["step"] for x in resumed.stdout.splitlines() if x.startswith('{"event": "step"')]
    assert steps == [3, 4]
    assert runs.read_state(run)["status"] == "finished"
    assert [e["step"] for e in runs.read_events(run) if e["event"] == "step"] == [1, 2, 3, 4]
