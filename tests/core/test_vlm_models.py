"""Model folders and the registry: every bad folder gives a ModelError that says what to do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sarlang_core.errors import ModelError
from sarlang_core.vlm import models as m
from sarlang_core.vlm.local import LocalBackend


def copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_inspect_base_and_adapter(tiny_qwen, tiny_lora):
    base = m.inspect_model(tiny_qwen)
    assert (base.family, base.kind, base.base_model, base.problems) == ("qwen2_5_vl", "base", None, [])
    assert base.size_bytes > 100_000 and base.name == tiny_qwen.name
    ad = m.inspect_model(tiny_lora)
    assert (ad.kind, ad.family, ad.base_model) == ("adapter", None, str(tiny_qwen))
    checked = m.inspect_model(tiny_lora, base=tiny_qwen)
    assert checked.family == "qwen2_5_vl" and checked.problems == []


def test_not_a_folder(tmp_path):
    with pytest.raises(ModelError, match="not a folder .it does not exist"):
        m.inspect_model(tmp_path / "nope")
    (tmp_path / "file.safetensors").write_bytes(b"x")
    with pytest.raises(ModelError, match="not a folder"):
        m.inspect_model(tmp_path / "file.safetensors")


def test_not_a_model(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(ModelError, match="not a model .no config.json"):
        m.inspect_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable JSON"):
        m.inspect_model(tmp_path)


def test_unsupported_model_type_names_the_supported_ones(tiny_qwen, tmp_path):
    folder = copy(tiny_qwen, tmp_path / "bert")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as err:
        m.inspect_model(folder)
    msg = str(err.value)
    assert "'bert' is not supported" in msg
    assert all(k in msg for k in ("qwen2_5_vl", "qwen2_vl", "llava"))
    with pytest.raises(ModelError, match="not supported"):
        LocalBackend(folder)


def test_missing_shard(tiny_qwen, tmp_path):
    folder = copy(tiny_qwen, tmp_path / "sharded")
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    index = {"metadata": {}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors",
                                            "model.embed_tokens.weight": "model-00001-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match="1 of 2 weight shards .* missing .first: model-00002-of-00002"):
        m.inspect_model(folder)


def test_bin_only_and_no_weights(tiny_qwen, tmp_path):
    folder = copy(tiny_qwen, tmp_path / "bin")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(ModelError, match="safetensors only"):
        m.inspect_model(folder)
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(ModelError, match="no weights"):
        m.inspect_model(folder)


def test_truncated_weights(tiny_qwen, tmp_path):
    folder = copy(tiny_qwen, tmp_path / "cut")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        m.inspect_model(folder)
    (folder / "model.safetensors").write_bytes(b"1234")
    with pytest.raises(ModelError, match="not a safetensors file"):
        m.inspect_model(folder)


def test_missing_side_files_are_problems(tiny_qwen, tmp_path):
    folder = copy(tiny_qwen, tmp_path / "bare")
    for name in ("tokenizer.json", "preprocessor_config.json", "chat_template.json", "chat_template.jinja"):
        (folder / name).unlink()
    tok_cfg = json.loads((folder / "tokenizer_config.json").read_text())
    tok_cfg.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
    problems = " | ".join(m.inspect_model(folder).problems)
    assert "tokenizer" in problems and "preprocessor_config.json" in problems and "chat template" in problems
    with pytest.raises(ModelError):
        LocalBackend(folder, device="cpu").load()


def test_adapter_for_another_family_is_refused(tiny_lora, tiny_llava):
    refused = "made for another base model .*not .tiny-llava-1.5. .LLaVA-1.5.: .*(do not exist|shapes differ)"
    with pytest.raises(ModelError, match=refused):
        m.inspect_model(tiny_lora, base=tiny_llava)
    with pytest.raises(ModelError, match="another base"):
        LocalBackend(tiny_llava, tiny_lora)


def test_adapter_for_another_size_is_refused(tiny_qwen, tiny_lora, tmp_path):
    """Same layer names, other shapes (e.g. a 7 B adapter on a 3 B base)."""
    from safetensors.torch import load_file, save_file

    folder = copy(tiny_qwen, tmp_path / "wider")
    weights = load_file(folder / "model.safetensors")
    for k in [k for k in weights if k.endswith("self_attn.q_proj.weight")]:
        weights[k] = weights[k].new_zeros((weights[k].shape[0], weights[k].shape[1] + 64))
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelError, match="layer shapes differ .*q_proj"):
        m.inspect_model(tiny_lora, base=folder)


def test_adapter_with_unknown_layers_is_refused(tiny_qwen, tiny_lora, tmp_path):
    from safetensors.torch import load_file, save_file

    ad = copy(tiny_lora, tmp_path / "odd-adapter")
    weights = load_file(ad / "adapter_model.safetensors")
    renamed = {k.replace("self_attn.q_proj", "self_attn.query_key_value"): v for k, v in weights.items()}
    save_file(renamed, ad / "adapter_model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelError, match="layers do not exist in the base .e.g. layers.0.self_attn.query_key_value"):
        m.inspect_model(ad, base=tiny_qwen)


def test_renamed_base_is_only_a_warning(tiny_qwen, tiny_lora, tmp_path):
    renamed = copy(tiny_qwen, tmp_path / "my-qwen")
    info = m.inspect_model(tiny_lora, base=renamed)
    assert info.family == "qwen2_5_vl"
    assert any("trained on" in p and "my-qwen" in p for p in info.problems)


def test_bad_adapters(tiny_lora, tiny_qwen, tmp_path):
    ad = copy(tiny_lora, tmp_path / "bin-adapter")
    (ad / "adapter_model.safetensors").rename(ad / "adapter_model.bin")
    with pytest.raises(ModelError, match="safetensors only"):
        m.inspect_model(ad)
    ia3 = copy(tiny_lora, tmp_path / "ia3")
    cfg = json.loads((ia3 / "adapter_config.json").read_text())
    cfg["peft_type"] = "IA3"
    (ia3 / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="LoRA only"):
        m.inspect_model(ia3)
    with pytest.raises(ModelError, match="is a LoRA adapter"):
        LocalBackend(tiny_lora)
    with pytest.raises(ModelError, match="not an adapter"):
        m.check_adapter(m.inspect_model(tiny_qwen), m.inspect_model(tiny_qwen))


# ---------------------------------------------------------------- registry

def write_registry(folder, models, name="registry.json"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"models": models}))
    return path


def test_registry_relative_and_absolute_paths(tiny_qwen, tiny_lora, tmp_path):
    local = copy(tiny_qwen, tmp_path / "qwen")
    path = write_registry(tmp_path, [
        {"name": "base", "path": "qwen", "notes": "zero-shot"},
        {"name": "tuned", "path": str(tiny_qwen), "adapter": str(tiny_lora)},
    ])
    reg = m.load_registry(path)
    assert reg.source == path and len(reg) == 2 and reg[0].path == local
    assert reg.get("tuned").adapter == tiny_lora and reg.get("base").notes == "zero-shot"
    with pytest.raises(ModelError, match="no model named 'x'.*known: base, tuned"):
        reg.get("x")
    rows = m.check_registry(reg)
    assert [r.ok for r in rows] == [True, True]
    entry, info = rows[1]                                   # unpacks as (entry, result)
    assert info.kind == "adapter" and info.family == "qwen2_5_vl"
    assert rows[1].to_dict()["adapter"] == str(tiny_lora)
    assert rows[0].describe().startswith("ok   base: Qwen2.5-VL")


def test_registry_reports_broken_entries(tiny_qwen, tiny_lora, tiny_llava, tmp_path):
    path = write_registry(tmp_path, [
        {"name": "gone", "path": "nowhere"},
        {"name": "mismatch", "path": str(tiny_llava), "adapter": str(tiny_lora)},
        {"name": "adapter-as-base", "path": str(tiny_lora)},
        {"name": "fine", "path": str(tiny_qwen)},
    ])
    rows = m.check_registry(path)
    assert [r.ok for r in rows] == [False, False, False, True]
    assert "does not exist" in str(rows[0].result) and "another base" in str(rows[1].result)
    assert "put it under 'adapter'" in str(rows[2].result)
    assert rows[0].describe().startswith("FAIL gone:") and rows[0].to_dict()["error"]


@pytest.mark.parametrize("content,match", [
    ("{bad json", "unreadable JSON"),
    ('{"models": {}}', "expected"),
    ('{"models": [{"name": "a"}]}', "needs a 'name' and a 'path'"),
    ('{"models": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]}', "used twice"),
])
def test_registry_format_errors(tmp_path, content, match):
    path = tmp_path / "registry.json"
    path.write_text(content)
    with pytest.raises(ModelError, match=match):
        m.load_registry(path)


def test_registry_default_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("SARLANG_MODELS", raising=False)
    with pytest.raises(ModelError, match="not found"):
        m.load_registry(tmp_path / "missing.json")          # named explicitly: must exist
    path = write_registry(tmp_path, [{"name": "a", "path": "a"}])
    monkeypatch.setenv("SARLANG_MODELS", str(path))
    assert m.default_registry_path() == path and m.load_registry()[0].name == "a"
    monkeypatch.delenv("SARLANG_MODELS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    user = m.default_registry_path()                        # read first and written to: the user's
    assert user.name == "models.json" and "sarlang-studio" in str(user) and user == m.user_registry_path()
    monkeypatch.setattr(m, "REPO_REGISTRY", tmp_path / "no-repo" / "registry.json")
    assert len(m.load_registry()) == 0                      # no user registry yet: empty, no error


def test_the_users_registry_is_read_and_the_shipped_one_only_adds(tiny_qwen, tmp_path, monkeypatch):
    # A field build ships models/registry.json; the user's models.json was once hidden behind it.
    monkeypatch.delenv("SARLANG_MODELS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    shipped = write_registry(tmp_path / "install" / "models", [{"name": "office-3b", "path": "office"},
                                                               {"name": "mine", "path": "shipped-mine"}])
    monkeypatch.setattr(m, "REPO_REGISTRY", shipped)
    user = m.user_registry_path()
    write_registry(user.parent, [{"name": "mine", "path": "/data/my-model"}], name=user.name)
    reg = m.load_registry()
    assert [(e.name, e.path) for e in reg] == [("mine", Path("/data/my-model")),
                                               ("office-3b", (shipped.parent / "office").resolve())]
    assert reg.source == user
    from sarlang_core.vlm.registry_write import register_model

    before = shipped.read_text()
    assert register_model("tiny", tiny_qwen) == user        # a new entry goes to the user's file...
    assert shipped.read_text() == before                    # ...never into the installed one
    assert [e.name for e in m.load_registry()] == ["mine", "tiny", "office-3b"]


def test_committed_registry_is_valid():
    assert m.REPO_REGISTRY.is_file()
    data = json.loads(m.REPO_REGISTRY.read_text())
    assert isinstance(data["models"], list)
    m.load_registry(m.REPO_REGISTRY)


def test_an_adapter_on_a_convolution_is_checked_like_a_linear_one(tiny_qwen, tmp_path):
    # LoRA on Qwen's Conv3d patch embedding: A is (r, in, kT, kH, kW), B (out, r, 1, 1, 1)
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_qwen, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=r".*visual\.patch_embed\.proj"))
    peft.save_pretrained(str(tmp_path / "conv-lora"))
    info = m.inspect_model(tmp_path / "conv-lora", base=m.inspect_model(tiny_qwen))
    assert info.kind == "adapter" and any("vision encoder" in p for p in info.problems)
