"""Session fixtures: tiny models, the toy training set and one trained run, each built once for the
whole test session (tests/conftest.py imports them, so tests/app, tests/core and tests/e2e share
them). Every one of them is read only: a test that needs to change one copies it first.

A fixture imported into several test modules is a separate fixture in each (pytest keys its
cache by where it is defined), so these live here and are requested by name, never imported
into a test module.

    def test_x(tiny_qwen, tiny_lora, tiny_llava): ...          # random tiny VLMs (no downloads)
    def test_y(trainable_qwen, toy_json, trained_run): ...     # the fine-tuning set-up
"""

from __future__ import annotations

import pytest

from sarlang_core.train.config import TrainConfig


def toy_config(model, dataset, **kw) -> TrainConfig:
    """Settings that let the tiny model learn 8 answers within 60 steps on a CPU."""
    base = dict(model=str(model), dataset=str(dataset), max_steps=60, grad_accum=1, learning_rate=5e-3,
                save_every=1000)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("vlm") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_lora(tiny_qwen, tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_lora

    return build_tiny_lora(tiny_qwen, tmp_path_factory.mktemp("vlm") / "tiny-lora", seed=1)


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_llava

    return build_tiny_llava(tmp_path_factory.mktemp("vlm") / "tiny-llava-1.5")


@pytest.fixture(scope="session")
def trainable_qwen(tmp_path_factory):
    """The tiny Qwen2.5-VL with its output layer scaled so that LoRA can make an answer likely
    (see build_tiny_qwen2_5_vl)."""
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("train") / "tiny-qwen", logit_scale=8.0)


@pytest.fixture(scope="session")
def toy_json(tmp_path_factory):
    """The 8-sample toy dataset (ShareGPT JSON, images in imgs/ beside it)."""
    from sarlang_core.train.demo import write_toy_dataset

    return write_toy_dataset(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def trained_run(trainable_qwen, toy_json, tmp_path_factory):
    """A finished 60-step run on the 8 toy samples, no preprocessing (read only!)."""
    from sarlang_core.train.engine import train

    run = tmp_path_factory.mktemp("runs") / "toy"
    train(run, toy_config(trainable_qwen, toy_json), None)
    return run


@pytest.fixture(scope="session")
def tiny_qwen_onnx(tiny_qwen, tiny_lora, tmp_path_factory):
    """The tiny Qwen2.5-VL with tiny_lora merged in, exported for ONNX Runtime (read only!)."""
    from sarlang_core.vlm.onnx_export import export_onnx

    return export_onnx(tiny_qwen, tmp_path_factory.mktemp("onnx") / "tiny-qwen-onnx", adapter=tiny_lora)
