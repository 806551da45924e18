"""export_llamafactory on faked run folders (config.json, pipeline.json, adapter) over tiny models, a real
curation store and SARLANG-1M files: the YAML holds the authors' values, the data it names exists."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from sarlang_core.datasets import ImageRecord, Item, Store
from sarlang_core.errors import ModelError, TrainError
from sarlang_core.preprocess.pipeline import Pipeline
from sarlang_core.train.config import TrainConfig
from sarlang_core.train.llamafactory import export_llamafactory, yaml_scalar
from sarlang_core.vlm.registry_write import register_model
from sarlang_core.vlm.tiny import build_tiny_lora


def read_yaml(text: str) -> dict:
    """The flat 'key: value  # comment' YAML the exporter writes (a test-side reader, no library)."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, sep, rest = line.partition(": ")
        assert sep and key.strip() == key and key not in out, line
        if rest.startswith('"'):
            value = json.JSONDecoder().raw_decode(rest)[0]
        else:
            raw = rest.split("  #")[0].strip()
            value = {"true": True, "false": False, "null": None}.get(raw, raw)
            if isinstance(value, str):
                for kind in (int, float):
                    try:
                        value = kind(raw)
                        break
                    except ValueError:
                        pass
        out[key] = value
    return out


def fake_run(folder, config: TrainConfig, pipeline=None, adapter_base=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    (folder / "pipeline.json").write_text(json.dumps(pipeline))
    if adapter_base is not None:
        build_tiny_lora(adapter_base, folder / "adapter", seed=4)
    return folder


def chips(folder, n: int):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(n):
        name = f"chip_{i}.png"
        Image.fromarray(rng.integers(0, 255, (40, 56), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def sarlang_json(tmp_path, n_images: int = 3):
    names = chips(tmp_path / "sar1m" / "images", n_images)
    records = [{"messages": [{"role": "user", "content": f"<image>How many ships are there in the image? #{k}"},
                             {"role": "assistant", "content": str(k)}], "images": [f"images/{name}"]}
               for k, name in enumerate(names * 2)]
    path = tmp_path / "sar1m" / "vqa_train.json"
    path.write_text(json.dumps(records))
    return path, len(records)


def test_the_defaults_give_the_authors_recipe(tiny_qwen, tmp_path):
    data, n = sarlang_json(tmp_path)
    run = fake_run(tmp_path / "run", TrainConfig(model=str(tiny_qwen), dataset=str(data)), adapter_base=tiny_qwen)
    out = tmp_path / "lf"
    path = export_llamafactory(run, out)
    assert path == out.resolve() / "train_lora.yaml"
    text = path.read_text()
    assert "llamafactory-cli train train_lora.yaml" in text.splitlines()[1] and text.startswith("# ")
    y = read_yaml(text)
    authors = dict(stage="sft", do_train=True, finetuning_type="lora", lora_rank=8, lora_alpha=16, lora_dropout=0.0,
                   lora_target="all", freeze_vision_tower=True, freeze_multi_modal_projector=True,
                   template="qwen2_vl", cutoff_len=2048, image_max_pixels=262144, trust_remote_code=False,
                   per_device_train_batch_size=1, gradient_accumulation_steps=8, learning_rate=1e-4,
                   num_train_epochs=3.0, lr_scheduler_type="cosine", warmup_ratio=0.1, bf16=True,
                   ddp_timeout=180000000, seed=42, save_steps=100, save_total_limit=2, logging_steps=10,
                   plot_loss=True, overwrite_output_dir=True, overwrite_cache=True, report_to="none")
    assert {k: y.get(k) for k in authors} == authors
    assert y["model_name_or_path"] == str(tiny_qwen.resolve())
    assert y["output_dir"] == str(out.resolve() / "saves" / "lora")
    assert not {"max_steps", "eval_dataset", "eval_steps", "fp16", "deepspeed"} & set(y)
    # SARLANG-1M JSON used as stored: referenced in place, images relative to its folder
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    assert y["dataset"] == "sarlang1m" and y["dataset_dir"] == str(out.resolve() / "data")
    assert info["sarlang1m"]["file_name"] == str(data.resolve()) and info["sarlang1m"]["formatting"] == "sharegpt"
    assert len(json.loads(data.read_text())) == n and y["media_dir"] == str(data.parent.resolve())
    readme = (out / "README.txt").read_text()
    assert "llamafactory-cli train train_lora.yaml" in readme and "What differs" in readme


def test_pyyaml_reads_the_same_values(tiny_llava, tmp_path):
    yaml = pytest.importorskip("yaml")
    data, _ = sarlang_json(tmp_path)
    cfg = TrainConfig(model=str(tiny_llava), dataset=str(data), learning_rate=5e-5, max_steps=120, epochs=1.5,
                      scheduler="linear", precision="fp16", train_vision=True, lora_r=16, lora_alpha=32,
                      gradient_checkpointing=True, deepspeed="zero2")
    text = export_llamafactory(fake_run(tmp_path / "run", cfg), tmp_path / "lf dir").read_text()
    y = read_yaml(text)
    assert yaml.safe_load(text) == y
    assert (y["template"], y["learning_rate"], y["max_steps"], y["num_train_epochs"]) == ("llava", 5e-5, 120, 1.5)
    assert (y["fp16"], y["freeze_vision_tower"], y["freeze_multi_modal_projector"]) == (True, False, False)
    assert (y["lora_rank"], y["lora_alpha"], y["disable_gradient_checkpointing"]) == (16, 32, False)
    assert y["deepspeed"] == "examples/deepspeed/ds_z2_config.json" and "bf16" not in y
    assert " " in y["output_dir"] and y["lr_scheduler_type"] == "linear"


@pytest.mark.parametrize("value", [1e-4, 5e-05, 1e-12, 3.0, 0.1, 180000000, True, None, "all", "16", "yes", "a b",
                                   "/tmp/x y/z", "C:\\models\\q", "x: y", "#c", "-1", "sarlang_train,sarlang_test"])
def test_scalars_round_trip_through_pyyaml(value):
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(f"k: {yaml_scalar(value)}") == {"k": value}


def make_store(tmp_path):
    """6 images (4 train, 2 test), 3 items each: accepted, edited, pending."""
    names = chips(tmp_path / "proj", 6)
    path = tmp_path / "proj" / "project.db"
    with Store.create(path) as s:
        s.add_images([ImageRecord(n, n, 56, 40, split="train" if i < 4 else "test") for i, n in enumerate(names)])
        s.add_items([Item(n, "counting", f"How many ships? {k}", str(k), status=status)
                     for n in names for k, status in enumerate(("accepted", "edited", "pending"))])
    return path


def test_a_store_run_exports_its_data_through_the_runs_pipeline(tiny_qwen, tmp_path):
    store = make_store(tmp_path)
    cfg = TrainConfig(model=str(tiny_qwen), dataset=str(store), eval_split="test", eval_every=5)
    run = fake_run(tmp_path / "run", cfg, pipeline=Pipeline().to_dict(), adapter_base=tiny_qwen)
    out = tmp_path / "lf"
    y = read_yaml(export_llamafactory(run, out).read_text())
    assert (y["dataset"], y["eval_dataset"]) == ("sarlang_train", "sarlang_test")
    assert (y["eval_strategy"], y["eval_steps"], y["per_device_eval_batch_size"]) == ("steps", 5, 1)
    assert y["dataset_dir"] == str(out.resolve() / "data") and "media_dir" not in y
    data = out / "data"
    info = json.loads((data / "dataset_info.json").read_text())
    train = json.loads((data / info["sarlang_train"]["file_name"]).read_text())
    test = json.loads((data / info["sarlang_test"]["file_name"]).read_text())
    assert (len(train), len(test)) == (4 * 2, 2 * 2)               # accepted + edited, per split
    assert {r["messages"][1]["content"] for r in train} == {"0", "1"}
    for rec in train + test:
        image = data / rec["images"][0]
        assert image.suffix == ".png" and image.is_file() and rec["messages"][0]["content"].startswith("<image>")
    assert json.loads((data / "pipeline.json").read_text()) == Pipeline().to_dict()

    # only accepted items, images as stored (pipeline null): copied unchanged
    run2 = fake_run(tmp_path / "run2", cfg.with_(statuses=("accepted",), eval_split=None))
    y2 = read_yaml(export_llamafactory(run2, tmp_path / "lf2").read_text())
    info2 = json.loads((tmp_path / "lf2" / "data" / "dataset_info.json").read_text())
    train2 = json.loads((tmp_path / "lf2" / "data" / info2["sarlang_train"]["file_name"]).read_text())
    assert len(train2) == 4 and "eval_dataset" not in y2
    copied = tmp_path / "lf2" / "data" / train2[0]["images"][0]
    assert copied.read_bytes() == (tmp_path / "proj" / copied.name).read_bytes()


def test_a_store_with_nothing_reviewed_is_a_train_error(tiny_qwen, tmp_path):
    store = make_store(tmp_path)
    run = fake_run(tmp_path / "run", TrainConfig(model=str(tiny_qwen), dataset=str(store), statuses=("rejected",)))
    with pytest.raises(TrainError, match="nothing to export"):
        export_llamafactory(run, tmp_path / "lf")
    assert not (tmp_path / "lf" / "train_lora.yaml").exists()


def test_a_registry_name_resolves_to_its_folder(tiny_qwen, tmp_path, monkeypatch):
    reg = tmp_path / "models.json"
    monkeypatch.setenv("SARLANG_MODELS", str(reg))
    register_model("tiny-base", tiny_qwen)
    data, _ = sarlang_json(tmp_path)
    run = fake_run(tmp_path / "run", TrainConfig(model="tiny-base", dataset=str(data)))
    y = read_yaml(export_llamafactory(run, tmp_path / "lf").read_text())
    assert y["model_name_or_path"] == str(tiny_qwen.resolve()) and y["template"] == "qwen2_vl"
    run2 = fake_run(tmp_path / "run2", TrainConfig(model="not-registered", dataset=str(data)))
    with pytest.raises(ModelError, match="no model named 'not-registered'"):
        export_llamafactory(run2, tmp_path / "lf2")


def test_a_given_dataset_dir_is_used_and_checked(tiny_qwen, tmp_path):
    data, _ = sarlang_json(tmp_path)
    run = fake_run(tmp_path / "run", TrainConfig(model=str(tiny_qwen), dataset=str(data)))
    with pytest.raises(TrainError, match="no dataset_info.json"):
        export_llamafactory(run, tmp_path / "lf", dataset_dir=tmp_path / "sar1m")
    export = tmp_path / "export"
    export.mkdir()
    (export / "dataset_info.json").write_text(json.dumps({"sarlang_train": {"file_name": "a.json"},
                                                          "sarlang_test": {"file_name": "b.json"}}))
    y = read_yaml(export_llamafactory(run, tmp_path / "lf", dataset_dir=export).read_text())
    assert (y["dataset"], y["dataset_dir"]) == ("sarlang_train", str(export.resolve()))
    assert not (tmp_path / "lf" / "data").exists()


def test_a_preprocessed_run_on_files_gets_its_samples_with_rendered_images(tiny_qwen, tmp_path):
    data, n = sarlang_json(tmp_path, n_images=3)
    cfg = TrainConfig(model=str(tiny_qwen), dataset=str(data))
    run = fake_run(tmp_path / "run", cfg, pipeline=Pipeline().to_dict())
    out = tmp_path / "lf"
    y = read_yaml(export_llamafactory(run, out).read_text())
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    records = json.loads((out / "data" / info[y["dataset"]]["file_name"]).read_text())
    assert len(records) == n and len({r["images"][0] for r in records}) == 3
    rendered = sorted((out / "data" / "images").iterdir())
    assert len(rendered) == 3 and all(Image.open(p).mode == "L" for p in rendered)
    assert "media_dir" not in y and "rendered through the run's Pipeline" in (out / "README.txt").read_text()


def test_a_csv_run_is_written_as_sharegpt(tiny_qwen, tmp_path):
    names = chips(tmp_path / "csv", 2)
    csv = tmp_path / "csv" / "captions_train.csv"
    csv.write_text("Image Name,Caption\n" + "".join(f"{n},A harbor with ships.\n" for n in names))
    run = fake_run(tmp_path / "run", TrainConfig(model=str(tiny_qwen), dataset=str(csv)))
    out = tmp_path / "lf"
    y = read_yaml(export_llamafactory(run, out).read_text())
    info = json.loads((out / "data" / "dataset_info.json").read_text())
    records = json.loads((out / "data" / info[y["dataset"]]["file_name"]).read_text())
    assert len(records) == 2 and all(r["messages"][1]["content"] == "A harbor with ships." for r in records)
    assert {r["images"][0] for r in records} == {str((tmp_path / "csv" / n).resolve()) for n in names}
