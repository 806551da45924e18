"""The fine-tuning services the GUI calls: pipeline choice, preview, the shown command, events,
and the benchmark line-up of an adapter."""

from __future__ import annotations

import json
import shlex

import pytest

from sarlang_core.errors import TrainError
from sarlang_core.services import training, training_after
from sarlang_core.train import runs

from .train_fixtures import toy_config


def test_pipeline_choices(toy_json, tmp_path):
    from sarlang_core.preprocess.pipeline import Pipeline

    assert training.pipeline_for(None, str(toy_json)) is None          # a released JSON: images as stored
    assert training.pipeline_for("none", str(toy_json)) is None
    assert training.pipeline_for("paper", str(toy_json)) == Pipeline().to_dict()
    Pipeline().with_(db=False).save(tmp_path / "p.json")
    assert training.pipeline_for(str(tmp_path / "p.json"), str(toy_json))["db"] is False


def test_shown_command_starts_the_same_run(trainable_qwen, toy_json, tmp_path):
    from sarlang_core.cli import build_parser
    from sarlang_core.cli.train import config_from_args

    config = toy_config(trainable_qwen, toy_json, lora_r=16, statuses=("accepted",), gradient_checkpointing=True,
                        eval_split="test", eval_every=50, learning_rate=2e-4)
    text = training.command_text(config, tmp_path / "run", "paper")
    words = shlex.split(text)
    assert words[:3] == ["sarlang-cli", "train", "run"] and "--lora-r" in words and "--lr" in words
    args = build_parser().parse_args(words[1:])
    parsed, pipeline = config_from_args(args)
    assert parsed == config and pipeline["filter"]["name"] == "refined-lee"


def test_gui_launch_carries_the_config_in_the_environment(trainable_qwen, toy_json, tmp_path, monkeypatch):
    from sarlang_core.cli import build_parser
    from sarlang_core.cli.train import config_from_args

    config = toy_config(trainable_qwen, toy_json, seed=7)
    launch = training.run_command(config, {"band": 0}, tmp_path / "run")
    assert str(trainable_qwen) not in " ".join(launch.args)            # the command line names no paths of the data
    for name, value in launch.env.items():
        monkeypatch.setenv(name, value)
    args = build_parser().parse_args(launch.args[launch.args.index("train"):])
    assert config_from_args(args) == (config, {"band": 0})
    assert training.resume_command(tmp_path / "run").args[-3:] == ["resume", str(tmp_path / "run"), "--progress-jsonl"]


def test_parse_event():
    assert training.parse_event(b'{"event": "step", "step": 3, "loss": 1.5}\n')["loss"] == 1.5
    assert training.parse_event("{'loss': 1.5}") is None
    assert training.parse_event('{"event": "unknown"}') is None


def test_preview_marks_the_supervised_text(trainable_qwen, toy_json):
    pv = training.preview_data(toy_config(trainable_qwen, toy_json, cutoff=74), None, count=2)
    assert len(pv.samples) == 2 and pv.stats["count"] == 8 and pv.stats["truncated"] == 8
    first = pv.samples[0]
    assert [sup for _, sup in first.pieces] == [False, True]
    assert first.pieces[1][0] == "ship<|im_end|>\n" and "<16 image tokens>" in first.pieces[0][0]
    assert first.over_cutoff and first.supervised_tokens == 4


def test_runs_list_and_benchmark_line_up(trained_run, trainable_qwen, tmp_path):
    listed = training.list_runs(trained_run.parent)
    assert [r.name for r in listed] == [trained_run.name]
    assert listed[0].status == "finished" and listed[0].has_adapter and listed[0].last_loss < 1.0
    configs = training_after.benchmark_configs(trained_run, "project.db", task="vqa")
    assert [(c.backend.adapter is not None, c.pipeline is not None) for c in configs] == [
        (False, False), (False, True), (True, False), (True, True)]
    assert all(c.dataset.split == "test" and c.backend.model == str(trainable_qwen.resolve()) for c in configs)
    assert configs[-1].pipeline["filter"]["name"] == "refined-lee"       # the paper's chain: the run used none
    assert len({c.name for c in configs}) == 4


def test_after_training_needs_an_adapter(tmp_path, trainable_qwen, toy_json):
    run = tmp_path / "run"
    run.mkdir()
    (run / runs.CONFIG).write_text(json.dumps(toy_config(trainable_qwen, toy_json).to_dict()))
    with pytest.raises(TrainError, match="has no adapter yet"):
        training_after.benchmark_configs(run, "x.db")
    with pytest.raises(TrainError, match="has no adapter yet"):
        training_after.merge_run(run, tmp_path / "merged")
