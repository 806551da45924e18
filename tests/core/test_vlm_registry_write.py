"""register_model / unregister_model on real registry files and tiny model folders built in the session."""

from __future__ import annotations

import json
import threading

import pytest

from sarlang_core.atomic import TEMP_MARK
from sarlang_core.errors import ModelError
from sarlang_core.vlm.models import check_registry, load_registry
from sarlang_core.vlm.registry_write import register_model, unregister_model
from sarlang_core.vlm.tiny import build_tiny_lora

META = {"base": "tiny", "dataset": "/data/p.db", "pipeline": {"filter": {"name": "refined_lee"}},
        "config": {"lora_r": 8, "lora_alpha": 16}, "run": "/runs/r1"}


def test_round_trip_creates_the_file_and_keeps_the_training_record(tiny_qwen, tiny_lora, tmp_path):
    reg = tmp_path / "conf" / "models.json"
    assert register_model("tiny", tiny_qwen, registry=reg) == reg
    register_model("tiny-sar", tiny_qwen, adapter=tiny_lora, notes="LoRA from r1", meta=META, registry=reg)
    data = json.loads(reg.read_text())
    assert [m["name"] for m in data["models"]] == ["tiny", "tiny-sar"]
    assert "trained" not in data["models"][0] and data["models"][1]["trained"] == META

    registry = load_registry(reg)
    plain, sar = registry.get("tiny"), registry.get("tiny-sar")
    assert plain.path == tiny_qwen.resolve() and plain.adapter is None and plain.trained is None
    assert sar.adapter == tiny_lora.resolve() and sar.notes == "LoRA from r1" and sar.trained == META
    checks = check_registry(reg)
    assert all(c.ok for c in checks) and checks[1].result.kind == "adapter"
    assert checks[1].to_dict()["trained"] == META

    assert unregister_model("tiny", registry=reg) == reg
    assert [e.name for e in load_registry(reg)] == ["tiny-sar"]
    assert sorted(p.name for p in reg.parent.iterdir()) == ["models.json"]


def test_the_default_registry_is_used_when_none_is_named(tiny_qwen, tmp_path, monkeypatch):
    reg = tmp_path / "env-models.json"
    monkeypatch.setenv("SARLANG_MODELS", str(reg))
    assert register_model("tiny", tiny_qwen) == reg
    assert load_registry().get("tiny").path == tiny_qwen.resolve()
    unregister_model("tiny")
    assert json.loads(reg.read_text()) == {"models": []}


def test_a_duplicate_name_is_refused_unless_replaced_in_place(tiny_qwen, tiny_lora, tmp_path):
    reg = tmp_path / "models.json"
    for name in ("a", "b", "c"):
        register_model(name, tiny_qwen, registry=reg)
    before = reg.read_bytes()
    with pytest.raises(ModelError, match="'b' is already registered"):
        register_model("b", tiny_qwen, adapter=tiny_lora, registry=reg)
    assert reg.read_bytes() == before
    register_model("b", tiny_qwen, adapter=tiny_lora, meta=META, registry=reg, replace=True)
    entries = load_registry(reg)
    assert [e.name for e in entries] == ["a", "b", "c"]
    assert entries.get("b").adapter == tiny_lora.resolve() and entries.get("b").trained == META


def test_a_folder_that_cannot_be_used_is_refused_and_nothing_changes(tiny_qwen, tiny_lora, tiny_llava, tmp_path):
    reg = tmp_path / "models.json"
    with pytest.raises(ModelError, match="does not exist"):
        register_model("x", tmp_path / "nowhere", registry=reg)
    assert not reg.exists()                       # not even an empty registry
    register_model("a", tiny_qwen, registry=reg)
    before = reg.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    llava_lora = build_tiny_lora(tiny_llava, tmp_path / "llava-lora", seed=2)
    bad = [
        (dict(path=empty), "not a model"),
        (dict(path=tiny_lora), "is a LoRA adapter"),
        (dict(path=tiny_qwen, adapter=llava_lora), "another base model"),
        (dict(path=tiny_qwen, adapter=tmp_path / "nowhere"), "does not exist"),
        (dict(path=tiny_qwen, meta={"config": object()}), "JSON"),
        (dict(path=tiny_qwen, meta=["not", "a", "dict"]), "must be a dict"),
    ]
    for kw, message in bad:
        with pytest.raises(ModelError, match=message):
            register_model("x", registry=reg, **kw)
        assert reg.read_bytes() == before, kw
    with pytest.raises(ModelError, match="needs a name"):
        register_model("  ", tiny_qwen, registry=reg)
    with pytest.raises(ModelError, match="no model named 'zz'.*known: a"):
        unregister_model("zz", registry=reg)
    assert reg.read_bytes() == before
    with pytest.raises(ModelError, match="not found"):
        unregister_model("a", registry=tmp_path / "absent.json")


def test_unknown_keys_and_other_entries_are_kept_as_written(tiny_qwen, tmp_path):
    reg = tmp_path / "models.json"
    (tmp_path / "rel-model").mkdir()
    original = {"version": 3, "comment": "team registry",
                "models": [{"name": "old", "path": "rel-model", "notes": "kept", "quant": {"bits": 4},
                            "trained": {"run": "r0"}}]}
    reg.write_text(json.dumps(original))
    register_model("new", tiny_qwen, registry=reg)
    data = json.loads(reg.read_text())
    assert data["version"] == 3 and data["comment"] == "team registry"
    assert data["models"][0] == original["models"][0]          # relative path, unknown key: untouched
    assert load_registry(reg).get("old").trained == {"run": "r0"}
    unregister_model("new", registry=reg)
    assert json.loads(reg.read_text()) == original


def test_a_registry_that_cannot_be_read_is_never_written_over(tiny_qwen, tmp_path):
    reg = tmp_path / "models.json"
    for text in ("{not json", '{"models": {}}',
                 '{"models": [{"name": "a", "path": "x"}, {"name": "a", "path": "y"}]}'):
        reg.write_text(text)
        with pytest.raises(ModelError):
            register_model("b", tiny_qwen, registry=reg)
        assert reg.read_text() == text


def test_readers_never_see_a_half_written_file_and_no_temporary_is_left(tiny_qwen, tmp_path):
    """Writes go through a temporary file renamed over the registry: a reader polling the file while
    entries come and go always parses it whole."""
    reg = tmp_path / "models.json"
    register_model("keep", tiny_qwen, registry=reg, notes="x" * 20_000)
    errors, stop = [], threading.Event()

    def read_loop():
        while not stop.is_set():
            try:
                assert load_registry(reg).get("keep").notes == "x" * 20_000
            except Exception as exc:   # any failure is the finding
                errors.append(exc)

    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for i in range(25):
            register_model(f"m{i}", tiny_qwen, registry=reg, notes="y" * 20_000)
            if i % 2:
                unregister_model(f"m{i - 1}", registry=reg)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert len(load_registry(reg)) == 1 + 13
    assert [p.name for p in tmp_path.iterdir() if TEMP_MARK in p.name] == []
