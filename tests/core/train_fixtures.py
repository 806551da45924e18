"""Fixtures for the fine-tuning tests: a tiny Qwen2.5-VL that can learn (its output layer scaled,
see build_tiny_qwen2_5_vl), toy datasets in each supported form, and one trained run.

    from .train_fixtures import trainable_qwen, toy_json, trained_run, ANSWERS, toy_config  # noqa: F401
"""

from __future__ import annotations

import pytest

from sarlang_core.train.config import TrainConfig
from sarlang_core.train.demo import ANSWERS, QUESTION, write_toy_images
from sarlang_core.train.demo import write_toy_dataset as write_toy_json

__all__ = ["ANSWERS", "QUESTION", "write_toy_json", "write_toy_images", "toy_config"]


def toy_config(model, dataset, **kw) -> TrainConfig:
    """Settings that let the tiny model learn 8 answers within 60 steps on a CPU."""
    base = dict(model=str(model), dataset=str(dataset), max_steps=60, grad_accum=1, learning_rate=5e-3,
                save_every=1000)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def trainable_qwen(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("train") / "tiny-qwen", logit_scale=8.0)


@pytest.fixture(scope="session")
def toy_json(tmp_path_factory):
    return write_toy_json(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def trained_run(trainable_qwen, toy_json, tmp_path_factory):
    """A finished 60-step run on the 8 toy samples (read only!)."""
    from sarlang_core.train.engine import train

    run = tmp_path_factory.mktemp("runs") / "toy"
    train(run, toy_config(trainable_qwen, toy_json), None)
    return run
