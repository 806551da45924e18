"""`sarlang-cli train` in real processes: every data source, kill and resume, graceful stop, and the
adapter in `sarlang-cli ask`. Steps whose own process is not under test (the uninterrupted reference
run, the trained run the later tests use, a base-model answer) run in this process through the
CLI's main or the engine it calls."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch
from safetensors.torch import load_file

from sarlang_core.datasets.records import ImageRecord, Item
from sarlang_core.datasets.store import Store
from sarlang_core.train import runs
from sarlang_core.train.demo import ANSWERS, QUESTION, write_toy_images

CLI = [sys.executable, "-m", "sarlang_core.cli"]
FAST = ["--grad-accum", "1", "--lr", "5e-3"]


def cli(*args, timeout=300):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def popen(*args):
    return subprocess.Popen([*CLI, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def cli_here(*args):
    """`sarlang-cli` through the function the console script calls (sarlang_core.cli.main), in this
    process: the same parsing, output and exit code, without another start of torch and the model.
    For the steps whose process is not what is tested (each behaviour here keeps a real process)."""
    from sarlang_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in args])
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def events_until(proc, stop):
    """Read JSON lines from ``proc`` until ``stop(event)`` is true; return the events read."""
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(json.loads(line))
        if stop(seen[-1]) or time.monotonic() > deadline:
            break
    return seen


@pytest.fixture(scope="module")
def model(trainable_qwen):
    """The session's tiny Qwen2.5-VL that can learn (tests/support/tiny_models.py)."""
    return trainable_qwen


@pytest.fixture(scope="module")
def toy(toy_json):
    """The session's 8-sample toy dataset."""
    return toy_json


def _losses(run):
    return [e["loss"] for e in runs.read_events(run) if e.get("event") == "step"]


def test_kill_then_resume_equals_an_uninterrupted_run(model, toy, tmp_path):
    from sarlang_core.train.config import TrainConfig
    from sarlang_core.train.engine import train

    args = ["--model", model, "--dataset", toy, *FAST, "--max-steps", 12, "--save-every", 5, "--progress-jsonl"]
    killed = tmp_path / "killed"
    proc = popen("train", "run", *args, "--out", killed)
    events_until(proc, lambda e: e["event"] == "step" and e["step"] == 7)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert runs.read_state(killed)["status"] == "stopped"            # running, but no process holds it
    assert [c.name for c in runs.checkpoints(killed)] == ["checkpoint-5"]
    resumed = cli("train", "resume", killed, "--progress-jsonl")
    assert resumed.returncode == 0, resumed.stderr
    assert '"event": "done"' in resumed.stdout
    # the uninterrupted reference: the same engine with the config and pipeline the CLI wrote for
    # the killed run, here in this process (a third process would add only its start)
    config = TrainConfig.from_dict(json.loads((killed / runs.CONFIG).read_text()))
    train(tmp_path / "whole", config, json.loads((killed / runs.PIPELINE).read_text()))
    assert runs.read_state(tmp_path / "whole")["status"] == "finished"
    assert _losses(killed) == pytest.approx(_losses(tmp_path / "whole"), rel=1e-4, abs=1e-5)
    assert len(_losses(killed)) == 12                                 # steps 6-7 written once, not twice
    a = load_file(str(killed / runs.ADAPTER / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "whole" / runs.ADAPTER / "adapter_model.safetensors"))
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in b)


@pytest.mark.parametrize("how", ["stop-command", "sigterm"])
def test_graceful_stop_checkpoints_the_current_step(model, toy, tmp_path, how):
    run = tmp_path / "run"
    proc = popen("train", "run", "--model", model, "--dataset", toy, *FAST, "--max-steps", 400,
                 "--save-every", 1000, "--out", run, "--progress-jsonl")
    seen = events_until(proc, lambda e: e["event"] == "step" and e["step"] >= 2)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        runs.request_stop(run)     # what `train stop` writes (a CLI start takes longer than 100 tiny steps)
    rest = [json.loads(line) for line in proc.stdout]
    assert proc.wait(60) == 0
    stopped = [e for e in rest if e["event"] == "stopped"]
    assert stopped, seen + rest
    step = stopped[0]["step"]
    assert step - seen[-1]["step"] <= 3                                # within a step or so of asking
    assert [c.name for c in runs.checkpoints(run)] == [f"checkpoint-{step}"]
    state = json.loads(cli("train", "status", run).stdout)
    assert state["status"] == "stopped" and state["checkpoints"] == [f"checkpoint-{step}"]
    assert not (run / runs.ADAPTER).exists()
    idle = cli("train", "stop", run)
    assert idle.returncode == 1 and "no training process is running there" in idle.stderr


def test_trains_on_a_store_an_export_folder_and_a_csv(model, tmp_path):
    from sarlang_core.services.datasets import export_project

    names = write_toy_images(tmp_path / "imgs", 6)
    db = tmp_path / "project.db"
    with Store.open(db, create=True) as store:
        store.add_images(ImageRecord(n, str(tmp_path / n), 112, 112, split="train" if i < 4 else "test")
                         for i, n in enumerate(names))
        store.add_items([Item(n, "identification", QUESTION, ANSWERS[i % 4], status=s)
                         for i, n in enumerate(names) for s in ("accepted", "pending")])
    out = cli("train", "run", "--model", model, "--dataset", db, "--max-steps", 2, "--out", tmp_path / "r-store",
              "--eval-split", "test", "--eval-every", 1, "--quiet")
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "r-store" / runs.DATA).read_text())
    assert data["train"]["kind"] == "store" and data["train"]["kept"] == 4   # accepted items of the train split
    assert data["eval"]["kept"] == 2
    evals = [e for e in runs.read_events(tmp_path / "r-store") if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [1, 2] and all(e["eval_loss"] > 0 for e in evals)
    assert json.loads((tmp_path / "r-store" / runs.PIPELINE).read_text())["filter"]["name"] == "refined-lee"

    # the other sources in process (the CLI's parsing is the same as above): an export folder, a CSV
    from sarlang_core.train.config import TrainConfig
    from sarlang_core.train.engine import train

    export_project(db, tmp_path / "export", preprocess=True)
    train(tmp_path / "r-export", TrainConfig(model=str(model), dataset=str(tmp_path / "export"), split="test",
                                             max_steps=2), None)
    data = json.loads((tmp_path / "r-export" / runs.DATA).read_text())["train"]
    assert data["kind"] == "export" and data["kept"] == 2

    rows = [["Image Name", "Question", "Answer"]] + [[n.split("/")[1], QUESTION, "ship"] for n in names]
    with open(tmp_path / "imgs" / "vqa.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    train(tmp_path / "r-csv", TrainConfig(model=str(model), dataset=str(tmp_path / "imgs" / "vqa.csv"), max_steps=2),
          None)
    assert json.loads((tmp_path / "r-csv" / runs.DATA).read_text())["train"]["kept"] == 6

    out = cli_here("train", "run", "--model", model, "--dataset", db, "--status", "rejected", "--out",
                   tmp_path / "r-none")
    assert out.returncode == 1 and "no items to train on" in out.stderr and not (tmp_path / "r-none").exists()


def test_preview_shows_the_supervised_span_and_lengths(model, toy):
    out = cli("train", "preview", "--model", model, "--dataset", toy, "--count", 1, "--cutoff", 74)
    assert out.returncode == 0, out.stderr
    assert "[[ship<|im_end|>\n]]" in out.stdout and "<16 image tokens>" in out.stdout
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["count"] == 8 and stats["over_cutoff"] == 8 and stats["truncated"] == 8


@pytest.fixture(scope="module")
def trained(model, toy, tmp_path_factory):
    """A 60-step run through the paper's pipeline (what `ask` applies by default), trained by
    `sarlang-cli train run` in this process (training in a process of its own is what the tests
    above check; the tests below use its adapter in real `ask`, `register`, `merge` processes)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    out = cli_here("train", "run", "--model", model, "--dataset", toy, *FAST, "--max-steps", 60, "--pipeline",
                   "paper", "--out", run, "--quiet")
    assert out.returncode == 0, out.stderr
    return run


def test_the_adapter_answers_in_sarlang_cli_ask(model, toy, trained):
    assert (trained / "image_cache").is_dir() and len(list((trained / "image_cache").glob("*.png"))) == 8
    image = toy.parent / "imgs" / "0.png"
    base = cli_here("ask", image, QUESTION, "--model", model, "--max-new-tokens", 6)     # the base, for contrast
    tuned = cli("ask", image, QUESTION, "--model", model, "--adapter", trained / runs.ADAPTER, "--max-new-tokens", 6)
    assert base.returncode == 0 and tuned.returncode == 0, base.stderr + tuned.stderr
    assert base.stdout.strip() not in ANSWERS
    assert tuned.stdout.strip() in ANSWERS, tuned.stdout


def test_register_merge_and_export_after_training(model, toy, trained, tmp_path):
    registry = tmp_path / "models.json"
    out = cli("train", "register", trained, "--name", "toy-lora", "--registry", registry)
    assert out.returncode == 0, out.stderr
    listed = subprocess.run([*CLI, "models", "--json", "--registry", str(registry)], capture_output=True, text=True)
    entry = {e["name"]: e for e in json.loads(listed.stdout)}["toy-lora"]
    assert entry["ok"] and entry["trained"]["steps"] == 60 and entry["trained"]["pipeline"]["filter"]
    image = toy.parent / "imgs" / "0.png"
    by_name = cli("ask", image, QUESTION, "--model", "toy-lora", "--registry", registry, "--max-new-tokens", 6)
    assert by_name.returncode == 0 and by_name.stdout.strip() in ANSWERS, by_name.stderr

    merged = tmp_path / "merged"
    out = cli("train", "merge", trained, "--out", merged)
    assert out.returncode == 0, out.stderr
    with_merged = cli_here("ask", image, QUESTION, "--model", merged, "--max-new-tokens", 6)
    assert with_merged.returncode == 0, with_merged.stderr
    assert with_merged.stdout == by_name.stdout

    out = cli("train", "export-llamafactory", trained, "--out", tmp_path / "lf")
    assert out.returncode == 0, out.stderr
    yaml = (tmp_path / "lf" / "train_lora.yaml").read_text()
    assert "lora_rank: 8" in yaml and "template: qwen2_vl" in yaml
