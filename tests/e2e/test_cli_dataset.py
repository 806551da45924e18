"""`sarlang-cli dataset ...` from COCO boxes to an exported training set, in real processes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

CLI = [sys.executable, "-m", "sarlang_core.cli", "dataset"]


def run(*args):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=dict(os.environ))


@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    recs, anns, aid = [], [], 1
    for i in range(12):
        name = f"chip_{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (128, 160), dtype=np.uint8)).save(images / name)
        recs.append({"id": i + 1, "file_name": name, "width": 160, "height": 128})
        for k in range(i % 4 + 1):
            anns.append({"id": aid, "image_id": i + 1, "category_id": 1 + (k % 2), "bbox": [10 + 20 * k, 12, 16, 14]})
            aid += 1
    anns.append({"id": aid, "image_id": 1, "category_id": 9, "bbox": [1, 1, 2, 2]})          # unknown category
    anns.append({"id": aid + 1, "image_id": 2, "category_id": 1, "bbox": [500, 500, 5, 5]})  # outside the image
    cats = [{"id": 1, "name": "ship"}, {"id": 2, "name": "aircraft"}]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": recs, "annotations": anns, "categories": cats}))
    return path, images


def test_coco_to_sharegpt(coco, tmp_path):
    ann, images = coco
    store = tmp_path / "project.db"
    out = run("import-coco", ann, "--images", images, "--store", store)
    assert out.returncode == 0, out.stderr
    assert "images: 12" in out.stdout and "problem(s)" in out.stdout and "instances.json" in out.stdout
    out = run("generate", "--store", store, "--seed", "3")
    assert out.returncode == 0, out.stderr
    assert "items: 108" in out.stdout                       # 9 per image
    assert run("qc", "--store", store).returncode == 0
    stats = json.loads(run("stats", "--store", store, "--json").stdout)
    assert stats["items"] == 108 and stats["images"] == 12
    assert set(stats["items_per_type"]) <= {"identification", "classification", "counting", "positioning", "referring"}
    out = run("split", "--store", store, "--ratio", "0.75")
    assert out.returncode == 0 and "train images: 9" in out.stdout
    dest = tmp_path / "export"
    out = run("export", "--store", store, "--format", "sharegpt", "--out", dest, "--status", "any")
    assert out.returncode == 0, out.stderr
    train = json.loads((dest / "sarlang_train.json").read_text())
    test = json.loads((dest / "sarlang_test.json").read_text())
    assert len(train) + len(test) == 108
    assert train[0]["messages"][0]["content"].startswith("<image>")
    exported = dest / train[0]["images"][0]
    assert exported.exists() and exported.suffix == ".png"
    assert json.loads((dest / "pipeline.json").read_text())["filter"]["name"] == "refined-lee"
    info = json.loads((dest / "dataset_info.json").read_text())
    assert any(v.get("formatting") == "sharegpt" for v in info.values())
    # nothing accepted yet: the default export is refused, naming --status, and writes nothing
    out = run("export", "--store", store, "--format", "jsonl", "--out", tmp_path / "none")
    assert out.returncode == 1 and "--status" in out.stderr and not (tmp_path / "none").exists()


def test_bad_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    out = run("import-coco", bad, "--store", tmp_path / "p.db")
    assert out.returncode == 1 and "bad.json" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    text = tmp_path / "p2.db"
    text.write_text("hello")
    out = run("stats", "--store", text)
    assert out.returncode == 1 and "p2.db" in out.stderr


def test_llm_captions_from_optical_pairs(tmp_path):
    from support.chat_server import serve

    sar, opt = tmp_path / "sar", tmp_path / "opt"
    sar.mkdir()
    opt.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(sar / f"p{i}.png")
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(opt / f"p{i}.png")
    store = tmp_path / "pairs.db"
    assert run("import-pairs", sar, opt, "--store", store).returncode == 0
    inquiries = '[{"question": "What shape is the field?", "answer": "Rectangular.", "category": "shape"}]'
    with serve() as ep:
        ep.plan += [{"pieces": ["A harbour with ships."]}, {"pieces": ["A detailed harbour."]},
                    {"pieces": [inquiries]}] * 2
        env_run = subprocess.run([*CLI, "llm", "--store", str(store), "--endpoint", ep.url, "--model", "sar-vlm",
                                  "--concurrency", "1"], capture_output=True, text=True, timeout=300,
                                 env=dict(os.environ, NO_PROXY="127.0.0.1", OPENAI_API_KEY="sk-local"))
        posts = len(ep.posts())
        env = dict(os.environ, NO_PROXY="127.0.0.1", OPENAI_API_KEY="sk-local")
        nothing_new = subprocess.run([*CLI, "llm", "--store", str(store), "--endpoint", ep.url, "--model",
                                      "sar-vlm"], capture_output=True, text=True, timeout=300, env=env)
        again = subprocess.run([*CLI, "llm", "--store", str(tmp_path / "pairs.db"), "--endpoint", ep.url, "--model",
                                "sar-vlm", "--all-pairs"], capture_output=True, text=True, timeout=300, env=env)
        assert len(ep.posts()) == posts          # the later runs are served from the cache
    assert env_run.returncode == 0, env_run.stderr
    assert "items: 6" in env_run.stdout and "requests: 6" in env_run.stdout
    assert nothing_new.returncode == 0 and "items: 0" in nothing_new.stdout   # every pair has LLM items
    assert again.returncode == 0 and "cache hits: 6" in again.stdout
    stats = json.loads(run("stats", "--store", store, "--json").stdout)
    assert stats["items_per_source"].get("llm") == 12


def test_stats_tables_and_similarity(coco, tmp_path):
    ann, images = coco
    store = tmp_path / "project.db"
    assert run("import-coco", ann, "--images", images, "--store", store).returncode == 0
    assert run("generate", "--store", store, "--seed", "3").returncode == 0
    out = run("stats", "--store", store, "--top", "3")
    assert out.returncode == 0, out.stderr
    assert "answers: counting" in out.stdout and "distinct)" in out.stdout
    stats = json.loads(run("stats", "--store", store, "--json").stdout)
    answers = stats["answers"]
    assert sum(d["total"] for d in answers.values()) == 108
    assert answers["counting"]["kind"] == "numeric" and answers["counting"]["numeric"]
    assert all(len(d["top"]) <= 20 for d in answers.values())

    # similarity, as the paper's table: image features from a file (rows in store image order)
    feats = np.random.default_rng(0).normal(size=(12, 8)) + 0.5
    np.save(tmp_path / "f.npy", feats)
    out = run("similarity", "--store", store, "--text", "none", "--image-features", tmp_path / "f.npy")
    assert out.returncode == 0, out.stderr
    assert "variance" in out.stdout and "features f.npy, 12 vectors" in out.stdout
    assert "SARLANG-1M (paper, Table 3, SAR): image 0.25 / 0.06, text 0.49 / 0.16" in out.stdout
    result = json.loads(run("similarity", "--store", store, "--text", "none", "--image-features",
                            tmp_path / "f.npy", "--json").stdout)
    u = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    c = (u @ u.T)[np.triu_indices(12, 1)]
    assert abs(result["image"]["mean"] - c.mean()) < 1e-6 and abs(result["image"]["var"] - c.var()) < 1e-6
    out = run("similarity", "--store", store, "--text", "none", "--image-features", tmp_path / "missing.npy")
    assert out.returncode == 1 and "missing.npy" in out.stderr and len(out.stderr.strip().splitlines()) == 1

    # questions with Sentence-BERT (offline) and a local vision model folder (a tiny random ViT), one process
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    vit = tmp_path / "vit"
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32)).save_pretrained(vit)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(vit)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([*CLI, "similarity", "--store", str(store), "--text", "questions", "--image-model", str(vit),
                          "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["text"]["n"] == 108 and result["text"]["pairs"] == 108 * 107 // 2
    assert 0 < result["text"]["mean"] < 1 and result["text"]["var"] > 0
    assert result["image"]["n"] == 12 and result["image"]["what"] == "model vit"


def _dialog_error(store, kind, source, folder):
    """The message the New-project dialog shows for these paths (its worker runs run_import)."""
    from sarlang_core.errors import SarlangError
    from sarlang_core.services.dataset_steps import ImportRequest, run_import

    with pytest.raises(SarlangError) as exc:
        run_import(ImportRequest(str(store), kind, str(source), None if folder is None else str(folder)))
    return str(exc.value)


def test_import_runs_the_dialogs_checks_and_writes_nothing(coco, tmp_path):
    ann, images = coco
    store = tmp_path / "p.db"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    for source, folder, words in ((ann, tmp_path / "no_such_images", "does not exist"),
                                  (ann, empty, "holds no images"),
                                  (images, images, "is a folder; choose the annotation file itself"),
                                  (tmp_path / "missing.json", images, "annotation file")):
        r = run("import-coco", source, "--images", folder, "--store", store)
        message = _dialog_error(store, "coco", source, folder)
        assert r.returncode == 1 and words in message
        assert r.stderr.strip() == f"sarlang-cli: error: {message}"
        assert not store.exists() and not list(tmp_path.glob("p.db*"))

    notes = tmp_path / "notes.db"           # never written over
    notes.write_text("my notes")
    r = run("import-coco", ann, "--images", images, "--store", notes)
    assert r.returncode == 1 and "not a dataset project" in r.stderr and notes.read_text() == "my notes"

    r = run("import-pairs", images, tmp_path / "no_optical", "--store", store)
    assert r.returncode == 1 and "optical images folder" in r.stderr and not store.exists()


def test_import_that_brings_nothing_leaves_no_project(coco, tmp_path):
    ann, _ = coco
    other = tmp_path / "other_images"
    other.mkdir()
    Image.new("L", (8, 8)).save(other / "unrelated.png")
    store = tmp_path / "p.db"
    r = run("import-coco", ann, "--images", other, "--store", store)
    assert r.returncode == 0 and "no project was written" in r.stdout and not store.exists()


def test_import_of_the_same_file_again_is_refused_until_replace(coco, tmp_path):
    ann, images = coco
    store = tmp_path / "project.db"
    assert run("import-coco", ann, "--images", images, "--store", store).returncode == 0
    before = json.loads(run("stats", "--store", store, "--json").stdout)
    out = run("import-coco", ann, "--images", images, "--store", store)
    assert out.returncode == 1 and "instances.json" in out.stderr and "--replace" in out.stderr, out
    assert len(out.stderr.strip().splitlines()) == 1
    assert json.loads(run("stats", "--store", store, "--json").stdout) == before
    out = run("import-coco", ann, "--images", images, "--store", store, "--replace")
    assert out.returncode == 0, out.stderr
    after = json.loads(run("stats", "--store", store, "--json").stdout)
    assert (after["images"], after["boxes"]) == (before["images"], before["boxes"]) == (12, 30)


def _readme_walkthrough() -> list:
    """The commands of the README's first dataset code block, comments removed."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Build and review SAR VQA datasets"):]
    block = section[section.index("```bash") + len("```bash"):]
    block = block[:block.index("```")]
    return [line.split("#")[0].split() for line in block.strip().splitlines() if line.strip()]


def test_readme_dataset_walkthrough_runs_end_to_end(tmp_path):
    """Exactly the README's commands, in a folder laid out as they assume, end in a non-empty export."""
    rng = np.random.default_rng(1)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    recs, anns = [], []
    for i in range(10):
        name = f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 255, (96, 128), dtype=np.uint8)).save(tmp_path / "JPEGImages" / name)
        recs.append({"id": i, "file_name": name, "width": 128, "height": 96})
        anns += [{"id": 10 * i + k, "image_id": i, "category_id": 1 + (i + k) % 3,
                  "bbox": [5.3 + 30 * k, 10.7 + 7 * k, 21.4, 17.9]} for k in range(1 + i % 3)]
    cats = [{"id": 1, "name": "ship"}, {"id": 2, "name": "aircraft"}, {"id": 3, "name": "car"}]
    (tmp_path / "annotations" / "instances_train.json").write_text(
        json.dumps({"images": recs, "annotations": anns, "categories": cats}))
    commands = _readme_walkthrough()
    assert [c[:3] for c in commands][0] == ["sarlang-cli", "dataset", "import-coco"]
    assert any(c[2] == "review" for c in commands) and commands[-1][2] == "export"
    for cmd in commands:
        assert cmd[:2] == ["sarlang-cli", "dataset"], cmd
        out = subprocess.run([*CLI, *cmd[2:]], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env=dict(os.environ))
        assert out.returncode == 0, (cmd, out.stdout, out.stderr)
        assert "problem(s)" not in out.stdout, (cmd, out.stdout)      # clean data gives no problems
    train = json.loads((tmp_path / "train_set" / "sarlang_train.json").read_text())
    test = json.loads((tmp_path / "train_set" / "sarlang_test.json").read_text())
    assert len(train) + len(test) > 0
    info = json.loads((tmp_path / "train_set" / "dataset_info.json").read_text())
    assert set(info) == {"sarlang_train", "sarlang_test"}


def test_export_where_nothing_matches_status_is_refused(coco, tmp_path):
    ann, images = coco
    store = tmp_path / "project.db"
    assert run("import-coco", ann, "--images", images, "--store", store).returncode == 0
    assert run("generate", "--store", store).returncode == 0
    dest = tmp_path / "none"
    for extra in ([], ["--status", "rejected"]):
        out = run("export", "--store", store, "--out", dest, *extra)
        assert out.returncode == 1 and "--status" in out.stderr and "nothing to export" in out.stderr, out
        assert len(out.stderr.strip().splitlines()) == 1
        assert not (dest / "dataset_info.json").exists()
    out = run("review", "--store", store, "--set", "rejected", "--type", "counting")
    assert out.returncode == 0, out.stderr
    stats = json.loads(run("stats", "--store", store, "--json").stdout)
    assert stats["items_per_status"]["rejected"] == stats["items_per_type"]["counting"]
    out = run("export", "--store", store, "--out", dest, "--status", "rejected", "--format", "jsonl")
    assert out.returncode == 0 and f"items exported: {stats['items_per_type']['counting']}" in out.stdout
    out = run("review", "--store", store, "--set", "accepted", "--category", "tank")
    assert out.returncode == 1 and "no item matches" in out.stderr
    out = run("review", "--store", store, "--set", "accepted", "--type", "poem")
    assert out.returncode == 1 and "poem" in out.stderr and len(out.stderr.strip().splitlines()) == 1
