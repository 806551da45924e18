"""The engine's token and FLOP counts (LoraTrainer counts them without a GPU sync per micro-batch):
exact, carried through a checkpoint, and the same after a stop and resume."""

from __future__ import annotations

import json

from sarlang_core.progress import CancelToken
from sarlang_core.train import runs
from sarlang_core.train.data import load_samples
from sarlang_core.train.engine import load_trainable_model, train
from sarlang_core.train.plan import plan_samples, resolve_model
from sarlang_core.vlm.processors import load_processor

from .train_fixtures import toy_config


def _trainer_state(run, step):
    return json.loads((run / runs.CHECKPOINTS / f"checkpoint-{step}" / "trainer_state.json").read_text())


def test_tokens_and_flops_are_counted_exactly_and_survive_a_resume(trainable_qwen, toy_json, tmp_path):
    # one epoch over the 8 toy samples, one per step, a checkpoint every 4 steps
    config = toy_config(trainable_qwen, toy_json, max_steps=8, save_every=4, keep_checkpoints=3)
    path, family = resolve_model(config.model)
    lengths = plan_samples(load_processor(path, family), family, config, load_samples(config)).lengths
    params = load_trainable_model(path, config, family, "fp32").num_parameters(exclude_embeddings=True)

    whole = tmp_path / "whole"
    events = []
    train(whole, config, None, emit=events.append)
    state = _trainer_state(whole, 8)
    assert state["num_input_tokens_seen"] == sum(lengths)
    assert state["total_flos"] == 6 * sum(lengths) * params
    per_step = [e["tokens_per_s"] * e["step_time_s"] for e in events if e["event"] == "step"]
    assert abs(sum(per_step) - sum(lengths)) <= 0.01 * sum(lengths)      # tokens/s is rounded

    cut = tmp_path / "cut"
    token = CancelToken()

    def stop_after_three(event):
        if event.get("event") == "step" and event["step"] == 3:
            token.cancel()
    train(cut, config, None, emit=stop_after_three, cancel=token)
    assert runs.read_state(cut)["status"] == "stopped"
    assert _trainer_state(cut, 4)["num_input_tokens_seen"] == _trainer_state(whole, 4)["num_input_tokens_seen"]
    train(cut, resume=True)
    assert _trainer_state(cut, 8)["num_input_tokens_seen"] == sum(lengths)
    assert _trainer_state(cut, 8)["total_flos"] == state["total_flos"]
