"""merge_adapter on tiny Qwen2.5-VL and LLaVA runs built in the session: the merged folder gives the
logits of base + adapter, loads like any base model, and a refused or cancelled merge writes nothing."""

from __future__ import annotations

import json

import pytest
import torch

from sarlang_core.errors import CancelledError, ModelError, TrainError
from sarlang_core.progress import CancelToken
from sarlang_core.train.config import TrainConfig
from sarlang_core.train.merge import PROVENANCE, merge_adapter
from sarlang_core.vlm.backend import ChatTurn
from sarlang_core.vlm.local import LocalBackend
from sarlang_core.vlm.models import inspect_model
from sarlang_core.vlm.tiny import build_tiny_lora

from .vlm_fixtures import sar_image

Q = [ChatTurn("user", "How many ships are there in the image?")]


def fake_run(folder, base, *, seed: int = 3):
    """A finished run folder: config.json and the final adapter (as the engine leaves them)."""
    folder.mkdir(parents=True)
    cfg = TrainConfig(model=str(base), dataset=str(folder / "data.db"))
    (folder / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    (folder / "pipeline.json").write_text("null")
    build_tiny_lora(base, folder / "adapter", seed=seed)
    return folder


def logits(model_path, adapter, image):
    backend = LocalBackend(model_path, adapter, device="cpu")
    backend.load()
    try:
        inputs = backend.prepare_inputs(image, Q)
        with torch.no_grad():
            return backend.model(**inputs).logits.float()
    finally:
        backend.unload()


def leftovers(parent, name):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}"))


@pytest.mark.parametrize("family", ["qwen2_5_vl", "llava"])
def test_merged_model_gives_base_plus_adapter_logits(family, tiny_qwen, tiny_llava, tmp_path):
    base = tiny_qwen if family == "qwen2_5_vl" else tiny_llava
    run = fake_run(tmp_path / "run", base)
    seen = []
    out = merge_adapter(base, run / "adapter", tmp_path / "merged", progress=seen.append)
    assert out == (tmp_path / "merged").absolute() and seen[-1].stage == "done"
    assert [p.stage for p in seen] == ["weights", "adapter", "merge", "save", "files", "done"]

    info = inspect_model(out)
    assert info.kind == "base" and info.family == family and info.problems == []
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"):
        assert (out / name).is_file(), name
    assert not (out / "adapter_config.json").exists()
    prov = json.loads((out / PROVENANCE).read_text())
    assert prov["base"] == str(base.resolve()) and prov["adapter"] == str((run / "adapter").resolve())
    assert prov["dtype"] == "float32" and prov["time"].endswith("Z")

    image = sar_image(300, 400, seed=5)
    want = logits(base, run / "adapter", image)
    got = logits(out, None, image)
    plain = logits(base, None, image)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() < 1e-4
    assert (plain - want).abs().max().item() > 1e-3        # the adapter does change the model
    assert leftovers(tmp_path, "merged") == []


def test_an_existing_folder_is_refused_and_left_as_it_was(tiny_qwen, tiny_lora, tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(TrainError, match="not empty"):
        merge_adapter(tiny_qwen, tiny_lora, out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    taken = tmp_path / "file"
    taken.write_text("x")
    with pytest.raises(TrainError, match="is a file"):
        merge_adapter(tiny_qwen, tiny_lora, taken)
    assert taken.read_text() == "x" and leftovers(tmp_path, "merged") == []


def test_an_empty_existing_folder_is_used(tiny_qwen, tiny_lora, tmp_path):
    out = tmp_path / "merged"
    out.mkdir()
    merge_adapter(tiny_qwen, tiny_lora, out)
    assert inspect_model(out).kind == "base"


def test_an_adapter_of_another_family_is_a_model_error_before_anything_is_written(tiny_qwen, tiny_llava,
                                                                                 tmp_path):
    llava_lora = build_tiny_lora(tiny_llava, tmp_path / "llava-lora", seed=2)
    out = tmp_path / "sub" / "merged"
    with pytest.raises(ModelError, match="another base model"):
        merge_adapter(tiny_qwen, llava_lora, out)
    assert not out.parent.exists()
    with pytest.raises(ModelError, match="not a base model"):
        merge_adapter(llava_lora, llava_lora, out)
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        merge_adapter(tiny_qwen, tiny_llava, out)
    assert not out.parent.exists()


def test_a_cancelled_merge_leaves_nothing(tiny_qwen, tiny_lora, tmp_path):
    token = CancelToken()

    def progress(p):
        if p.stage == "save":
            token.cancel()

    with pytest.raises(CancelledError):
        merge_adapter(tiny_qwen, tiny_lora, tmp_path / "merged", progress=progress, cancel=token)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_merged_weights_are_as_readable_as_any_file_the_user_writes(tiny_qwen, tiny_lora, tmp_path):
    import os

    out = merge_adapter(tiny_qwen, tiny_lora, tmp_path / "merged")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    expected = os.stat(plain).st_mode & 0o777
    assert all(os.stat(p).st_mode & 0o777 == expected for p in out.iterdir() if p.is_file())
