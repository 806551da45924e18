"""The LoRA engine learns, writes a usable adapter, and its run folder says what happened."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from sarlang_core.errors import ModelError, TrainError
from sarlang_core.train import runs
from sarlang_core.train.engine import train

from .train_fixtures import ANSWERS, QUESTION, toy_config


def _losses(run):
    return [e["loss"] for e in runs.read_events(run) if e.get("event") == "step"]


def test_tiny_model_overfits_eight_examples(trained_run):
    losses = _losses(trained_run)
    assert len(losses) == 60
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last <= first / 2, (first, last)
    state = runs.read_state(trained_run)
    assert state["status"] == "finished" and state["step"] == 60
    steps = [e for e in runs.read_events(trained_run) if e["event"] == "step"]
    for key in ("epoch", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "step_time_s"):
        assert all(e[key] is not None for e in steps), key
    assert steps[0]["lr"] < steps[5]["lr"]            # warm-up (ratio 0.1 of 60 steps)
    assert steps[-1]["lr"] < steps[10]["lr"]          # then cosine decay
    data = json.loads((trained_run / runs.DATA).read_text())
    assert data["train"]["kept"] == 8 and data["train"]["tokens"]["over_cutoff"] == 0


def test_run_folder_records_config_pipeline_and_peft_adapter(trained_run, trainable_qwen):
    from sarlang_core.vlm.models import inspect_model

    cfg = json.loads((trained_run / runs.CONFIG).read_text())
    assert cfg["lora_r"] == 8 and cfg["lora_alpha"] == 16 and cfg["max_steps"] == 60
    assert json.loads((trained_run / runs.PIPELINE).read_text()) is None
    info = inspect_model(trained_run / runs.ADAPTER, base=trainable_qwen)
    assert info.kind == "adapter"
    weights = load_file(str(trained_run / runs.ADAPTER / "adapter_model.safetensors"))
    assert weights and all("visual" not in k for k in weights)            # the vision tower stays frozen
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in weights.items())
    prov = json.loads((trained_run / runs.ADAPTER / "sarlang_train.json").read_text())
    assert prov["base"] == str(trainable_qwen.resolve()) and prov["steps"] == 60


def test_adapter_moves_the_greedy_answer_to_the_trained_ones(trained_run, trainable_qwen, toy_json):
    from PIL import Image

    from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
    from sarlang_core.vlm.local import LocalBackend

    image = Image.open(toy_json.parent / "imgs" / "0.png")
    turns = [ChatTurn("user", QUESTION)]
    cfg = GenerationConfig(max_new_tokens=6)
    base = LocalBackend(trainable_qwen, device="cpu")
    base.load()
    tuned = LocalBackend(trainable_qwen, trained_run / runs.ADAPTER, device="cpu")
    tuned.load()
    before, after = base.answer(image, turns, cfg).strip(), tuned.answer(image, turns, cfg).strip()
    assert before not in ANSWERS
    assert after in ANSWERS, after


def test_label_masking_supervises_only_the_answer_token_by_token(trainable_qwen, toy_json):
    from PIL import Image

    from sarlang_core.train.data import TrainSample
    from sarlang_core.train.encode import IGNORE, Encoder
    from sarlang_core.vlm.processors import load_processor

    proc = load_processor(trainable_qwen, "qwen2_5_vl")
    enc = Encoder(proc, "qwen2_5_vl", toy_config(trainable_qwen, toy_json))
    sample = TrainSample("s", str(toy_json.parent / "imgs" / "0.png"), "How many ships?", "three ships", "counting",
                         112, 112)
    row = enc.encode(sample, Image.open(sample.image))
    ids, labels = row["input_ids"].tolist(), row["labels"].tolist()
    assert len(ids) == len(labels) == enc.length(sample)
    supervised = [i for i, lab in enumerate(labels) if lab != IGNORE]
    assert supervised == list(range(len(ids) - len(supervised), len(ids)))   # one span, at the end
    for i in supervised:
        assert labels[i] == ids[i]
    tok = proc.tokenizer
    assert tok.decode([ids[i] for i in supervised]) == "three ships<|im_end|>\n"
    prompt = tok.decode(ids[:supervised[0]])
    assert prompt.endswith("<|im_start|>assistant\n") and "How many ships?" in prompt
    image_id = tok.convert_tokens_to_ids("<|image_pad|>")
    assert ids.count(image_id) == 16 and all(labels[i] == IGNORE for i, t in enumerate(ids) if t == image_id)


def test_llava_trains_and_masks_its_own_template(tiny_llava, toy_json, tmp_path):
    run = tmp_path / "llava"
    state = train(run, toy_config(tiny_llava, toy_json, max_steps=3), None)
    assert state["status"] == "finished"
    assert (run / runs.ADAPTER / "adapter_model.safetensors").is_file()


def test_samples_over_the_cutoff_are_truncated_or_skipped(trainable_qwen, toy_json, tmp_path):
    from sarlang_core.train.data import load_samples
    from sarlang_core.train.plan import plan_samples
    from sarlang_core.vlm.processors import load_processor

    proc = load_processor(trainable_qwen, "qwen2_5_vl")
    config = toy_config(trainable_qwen, toy_json)
    data = load_samples(config)
    full = plan_samples(proc, "qwen2_5_vl", config, data)
    shortest = min(full.lengths)
    prompt = full.encoder.prompt_length(data.samples[0])
    cut = toy_config(trainable_qwen, toy_json, cutoff=prompt + 1)     # room for one answer token
    truncated = plan_samples(proc, "qwen2_5_vl", cut, data)
    assert truncated.stats()["truncated"] == 8 and len(truncated.samples) == 8
    assert max(truncated.lengths) == prompt + 1 < shortest
    some = plan_samples(proc, "qwen2_5_vl", config.with_(cutoff=shortest, overlong="skip"), data)
    longer = sum(1 for n in full.lengths if n > shortest)
    assert 0 < longer < 8 and some.stats()["skipped"] == longer and len(some.samples) == 8 - longer
    with pytest.raises(TrainError, match="longer than the cutoff"):
        plan_samples(proc, "qwen2_5_vl", cut.with_(overlong="skip"), data)
    # the dataset still trains under truncation: its rows are exactly at the cutoff
    from PIL import Image

    row = truncated.encoder.encode(data.samples[0], Image.open(data.samples[0].image))
    assert len(row["input_ids"]) == prompt + 1 and (row["labels"] != -100).sum() == 1


def test_bad_inputs_are_refused_before_anything_is_written(trainable_qwen, tiny_lora, toy_json, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ModelError, match="adapter"):
        train(run, toy_config(tiny_lora, toy_json), None)
    assert not run.exists()
    with pytest.raises(TrainError, match="not found"):
        train(run, toy_config(trainable_qwen, tmp_path / "nothing.json"), None)
    assert not run.exists()
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps([{"messages": [{"role": "user", "content": "<image>q"},
                                               {"role": "assistant", "content": "a"}], "images": ["gone.png"]}]))
    with pytest.raises(TrainError, match="no items to train on.*gone.png"):
        train(run, toy_config(trainable_qwen, empty), None)
    assert not run.exists()
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match="not empty"):
        train(run, toy_config(trainable_qwen, toy_json), None)
    assert sorted(p.name for p in run.iterdir()) == ["notes.txt"]


def test_two_processes_cannot_write_one_run_folder(trainable_qwen, toy_json, tmp_path):
    run = tmp_path / "run"
    with runs.RunLock(run):
        assert runs.RunLock.held(run)
        with pytest.raises(TrainError, match="another training process"):
            train(run, toy_config(trainable_qwen, toy_json, max_steps=2), None)
    assert not runs.RunLock.held(run)
    assert train(run, toy_config(trainable_qwen, toy_json, max_steps=2), None)["status"] == "finished"
    with pytest.raises(TrainError, match="already holds a run"):
        train(run, toy_config(trainable_qwen, toy_json, max_steps=2), None)
    with pytest.raises(TrainError, match="has finished"):
        train(run, resume=True)


def test_a_failed_checkpoint_write_keeps_the_previous_one_and_resumes(trainable_qwen, toy_json, tmp_path):
    """An OSError while writing checkpoint-6 (a file in its way: the path a full disk takes too):
    a clear error, checkpoint-3 intact, state "failed" but resumable; resume then finishes with the
    losses of an uninterrupted run."""
    run = tmp_path / "run"
    config = toy_config(trainable_qwen, toy_json, max_steps=8, save_every=3)

    def block_the_next_checkpoint(event):
        if event["event"] == "checkpoint" and event["step"] == 3:
            (run / runs.CHECKPOINTS / "checkpoint-6").write_text("in the way")

    with pytest.raises(TrainError, match="could not write the run folder.*resumed"):
        train(run, config, None, emit=block_the_next_checkpoint)
    assert [c.name for c in runs.checkpoints(run)] == ["checkpoint-3"]
    state = runs.read_state(run)
    assert state["status"] == "failed" and state["resumable"] and state["step"] == 3
    (run / runs.CHECKPOINTS / "checkpoint-6").unlink()
    assert train(run, resume=True)["status"] == "finished"
    reference = tmp_path / "reference"
    train(reference, config, None)
    assert _losses(run) == pytest.approx(_losses(reference), rel=1e-4, abs=1e-5)
    a = load_file(str(run / runs.ADAPTER / "adapter_model.safetensors"))
    b = load_file(str(reference / runs.ADAPTER / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


@pytest.mark.parametrize("family", ["qwen", "llava"])
def test_vision_tower_lora_is_an_option_with_a_warning(family, trainable_qwen, tiny_llava, toy_json,
                                                       tmp_path):
    model = trainable_qwen if family == "qwen" else tiny_llava
    said = []
    train(tmp_path / "run", toy_config(model, toy_json, max_steps=1, train_vision=True), None, emit=said.append)
    assert any(e.get("stage") == "warning" and "vLLM ignores LoRA" in e["message"] for e in said)
    keys = load_file(str(tmp_path / "run" / runs.ADAPTER / "adapter_model.safetensors")).keys()
    tower = "visual" if family == "qwen" else "vision_tower"
    assert any(tower in k for k in keys) and any("language_model" in k for k in keys)
    # the adapter loads back onto its base (the patch embedding, a Conv3d, once made it look foreign)
    from sarlang_core.vlm.models import inspect_model

    info = inspect_model(tmp_path / "run" / runs.ADAPTER, base=inspect_model(model))
    assert any("vision encoder" in p for p in info.problems)


def test_missing_images_are_reported_and_the_rest_trains(trainable_qwen, toy_json, tmp_path):
    records = json.loads(toy_json.read_text())
    records[1]["images"] = ["imgs/missing.png"]
    partial = toy_json.parent / "partial.json"
    partial.write_text(json.dumps(records))
    run = tmp_path / "run"
    train(run, toy_config(trainable_qwen, partial, max_steps=1), None)
    data = json.loads((run / runs.DATA).read_text())["train"]
    assert data["kept"] == 7 and data["problems"] == 1 and "missing.png" in data["first_problems"][0]


def test_out_of_memory_says_what_to_change():
    from sarlang_core.train.engine import _failure_text

    text = _failure_text(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert "image_max_pixels" in text and "gradient checkpointing" in text and "resumed" in text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_in_bf16_on_a_gpu_and_reports_its_memory(trainable_qwen, toy_json, tmp_path):
    state = train(tmp_path / "run", toy_config(trainable_qwen, toy_json, max_steps=4), None)
    assert state["status"] == "finished"
    steps = [e for e in runs.read_events(tmp_path / "run") if e["event"] == "step"]
    assert all(e["gpu_mem_gb"] is not None and e["gpu_mem_gb"] > 0 for e in steps)
    assert steps[-1]["loss"] < steps[0]["loss"] * 1.5


def test_adapter_and_checkpoints_are_as_readable_as_any_file_the_user_writes(trained_run, tmp_path):
    """safetensors creates its files owner-only (0600): a colleague on a shared drive could not load
    the adapter. Everything in a run is given plain open() permissions (0666 minus the umask)."""
    import os

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = os.stat(plain).st_mode & 0o777
    files = [p for p in (trained_run / runs.ADAPTER).iterdir()]
    assert any(p.suffix == ".safetensors" for p in files)
    for p in files:
        assert os.stat(p).st_mode & 0o777 == expected, p
