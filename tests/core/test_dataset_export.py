"""Export formats parse back with the exact structure; splits are deterministic and disjoint."""

from __future__ import annotations

import csv
import json
import os
import random

import pytest

from sarlang_core.atomic import TEMP_MARK
from sarlang_core.datasets.export import export_dataset
from sarlang_core.datasets.records import ImageRecord, Item
from sarlang_core.datasets.splits import apply_splits, split_by_image
from sarlang_core.errors import ExportError, SarlangError

# ----------------------------------------------------------------------------- splits
IDS = [f"img_{i:05d}.png" for i in range(2000)]


def test_split_ratio_disjoint_complete():
    s = split_by_image(IDS)
    assert set(s) == set(IDS)
    train = {i for i, v in s.items() if v == "train"}
    test = {i for i, v in s.items() if v == "test"}
    assert not train & test and len(train) == 1400 and len(test) == 600


def test_split_independent_of_order_and_seeded():
    shuffled = IDS[:]
    random.Random(7).shuffle(shuffled)
    assert split_by_image(shuffled + IDS[:10]) == split_by_image(IDS)      # order, duplicates
    assert split_by_image(IDS, seed=1) != split_by_image(IDS, seed=0)
    assert split_by_image(IDS, seed=1) == split_by_image(list(reversed(IDS)), seed=1)


def test_split_keep_respected():
    keep = {IDS[0]: "val", IDS[1]: "train", IDS[2]: "test", "not_here.png": "train"}
    s = split_by_image(IDS[:100], keep=keep, ratio=0.0)
    assert s[IDS[0]] == "test" and s[IDS[1]] == "train" and s[IDS[2]] == "test"
    assert "not_here.png" not in s
    assert all(s[i] == "test" for i in IDS[3:100])                      # ratio 0 for the free ones
    with pytest.raises(SarlangError, match="unknown split"):
        split_by_image(IDS[:3], keep={IDS[0]: "holdout"})
    with pytest.raises(SarlangError, match="between 0 and 1"):
        split_by_image(IDS, ratio=1.5)


def test_apply_splits():
    imgs = {"a": ImageRecord("a", "/x/a.png", 4, 4)}
    assert apply_splits(imgs, {"a": "test"})["a"].split == "test"


# ----------------------------------------------------------------------------- export
@pytest.fixture
def project(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    images = {}
    for name, split in (("a.jpg", "train"), ("sub/b.jpg", "test")):
        (src / name).write_bytes(b"IMG-" + name.encode())
        images[name] = ImageRecord(name, str(src / name), 8, 8, split=split)
    items = [
        Item("a.jpg", "caption_concise", "Describe the image.", 'A ship, "moored"\nat a pier.', id=1,
             status="accepted"),
        Item("a.jpg", "counting", "How many ships are there in the image?", "1", id=2, status="edited"),
        Item("sub/b.jpg", "positioning", "<image>Where are most cars positioned?", "left", id=3, status="accepted"),
        Item("sub/b.jpg", "general", "Why?", "No.", id=4, status="pending"),
    ]
    return tmp_path / "out", images, items


def no_temp_files(out):
    return not [p for p in out.rglob("*") if ".part" in p.name or TEMP_MARK in p.name]


def test_exported_images_and_files_get_plain_open_permissions(project):
    """Colleagues on a shared drive can read an export: umask 022 gives 0644, not mkstemp's 0600."""
    import stat

    out, images, items = project
    old = os.umask(0o022)
    try:
        export_dataset(items, images, out, format="sharegpt", image_root=out.parent)
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.suffix in (".png", ".jpg") for p in files)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {oct(0o644)}
    assert no_temp_files(out)


def test_sharegpt(project):
    out, images, items = project
    s = export_dataset(items, images, out, format="sharegpt", pipeline_json={"steps": ["lee"]})
    assert s.items_by_split == {"train": 2, "test": 1} and s.skipped_status == 1 and s.images_written == 2
    train = json.loads((out / "sarlang_train.json").read_text())
    assert train == [
        {"messages": [{"role": "user", "content": "<image>Describe the image."},
                      {"role": "assistant", "content": 'A ship, "moored"\nat a pier.'}],
         "images": ["images/a.jpg"]},
        {"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                      {"role": "assistant", "content": "1"}],
         "images": ["images/a.jpg"]}]
    test = json.loads((out / "sarlang_test.json").read_text())
    assert test[0]["messages"][0]["content"] == "<image>Where are most cars positioned?"
    assert test[0]["images"] == ["images/sub/b.jpg"]
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["sarlang_train"] == {
        "file_name": "sarlang_train.json", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
    assert set(info) == {"sarlang_train", "sarlang_test"}
    assert json.loads((out / "pipeline.json").read_text()) == {"steps": ["lee"]}
    assert (out / "images/sub/b.jpg").read_bytes() == b"IMG-sub/b.jpg"
    assert no_temp_files(out)


def test_llava_all_statuses(project):
    out, images, items = project
    s = export_dataset(items, images, out, format="llava", statuses=None)
    assert s.items_written == 4 and s.skipped_status == 0
    test = json.loads((out / "llava_test.json").read_text())
    assert test == [
        {"id": "3", "image": "images/sub/b.jpg",
         "conversations": [{"from": "human", "value": "<image>\nWhere are most cars positioned?"},
                           {"from": "gpt", "value": "left"}]},
        {"id": "4", "image": "images/sub/b.jpg",
         "conversations": [{"from": "human", "value": "<image>\nWhy?"}, {"from": "gpt", "value": "No."}]}]
    assert not (out / "dataset_info.json").exists()


def test_jsonl_single_file_when_no_splits(project):
    out, images, items = project
    images = {k: ImageRecord(v.id, v.path, v.width, v.height) for k, v in images.items()}
    s = export_dataset(items, images, out, format="jsonl")
    assert s.files == ["items.jsonl"]
    rows = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0] == {"image_id": "a.jpg", "type": "caption_concise", "question": "Describe the image.",
                       "answer": 'A ship, "moored"\nat a pier.', "source": "template", "meta": {},
                       "id": 1, "status": "accepted", "image": "images/a.jpg", "split": None}


def test_csv_columns(project):
    out, images, items = project
    export_dataset(items, images, out, format="csv")
    def read(name):
        with open(out / name, newline="", encoding="utf-8") as f:
            return list(csv.reader(f))
    assert read("captions_train.csv") == [["Image Name", "Caption"], ["a.jpg", 'A ship, "moored"\nat a pier.']]
    assert read("vqa_train.csv") == [["Image Name", "Question", "Answer"],
                                     ["a.jpg", "How many ships are there in the image?", "1"]]
    assert read("captions_test.csv") == [["Image Name", "Caption"]]
    assert read("vqa_test.csv") == [["Image Name", "Question", "Answer"],
                                    ["sub/b.jpg", "Where are most cars positioned?", "left"]]


def test_image_writer_writes_png_atomically(project):
    out, images, items = project
    calls = []

    def writer(rec, dest):
        assert dest.suffix == ".png" and dest.parent.is_dir() and not dest.name.startswith("a.")
        calls.append(rec.id)
        dest.write_bytes(b"PNG" + rec.id.encode())

    export_dataset(items, images, out, format="sharegpt", image_writer=writer)
    assert sorted(calls) == ["a.jpg", "sub/b.jpg"]
    assert (out / "images/a.png").read_bytes() == b"PNGa.jpg"
    assert json.loads((out / "sarlang_train.json").read_text())[0]["images"] == ["images/a.png"]
    assert no_temp_files(out)


def test_failures_leave_no_partial_files(project):
    out, images, items = project
    with pytest.raises(ExportError, match="not in the project"):
        export_dataset(items + [Item("zzz.png", "general", "q", "a", status="accepted")], images, out)
    assert not out.exists()

    def broken(rec, dest):
        dest.write_bytes(b"half")
        raise RuntimeError("disk full")
    with pytest.raises(ExportError, match="disk full"):
        export_dataset(items, images, out, image_writer=broken)
    assert no_temp_files(out) and not list(out.glob("*.json"))
    with pytest.raises(ExportError, match="unknown export format"):
        export_dataset(items, images, out, format="parquet")
    with pytest.raises(ExportError, match="not valid JSON"):
        export_dataset(items, images, out, pipeline_json="{oops")


def test_progress_per_image_and_cancel_writes_no_dataset_file(project):
    from sarlang_core.errors import CancelledError
    from sarlang_core.progress import CancelToken

    out, images, items = project
    seen = []
    export_dataset(items, images, out, format="sharegpt", progress=seen.append)
    assert [(p.done, p.total) for p in seen] == [(0, 2), (1, 2), (2, 2)]

    again, token = out.parent / "cancelled", CancelToken()

    def cancel_after_first(p):
        if p.done == 1:
            token.cancel()

    with pytest.raises(CancelledError):
        export_dataset(items, images, again, format="sharegpt", progress=cancel_after_first, cancel=token)
    written = sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file())
    assert written == ["images/a.jpg"]        # the first image only: no JSON naming a missing image
    assert no_temp_files(again)


def test_nothing_matching_the_statuses_is_refused_and_nothing_written(project):
    """Issue 10: an export of no item wrote dataset_info.json as {} and reported success."""
    out, images, items = project
    with pytest.raises(ExportError, match="no item of status rejected"):
        export_dataset(items, images, out, format="sharegpt", statuses=("rejected",))
    assert not out.exists()
    with pytest.raises(ExportError, match="no item of any status"):
        export_dataset([], images, out, statuses=None)
    assert not out.exists()


@pytest.mark.parametrize("bad_id", ["../x.png", "/etc/x.png", "sub/../../x.png", "C:\\\\x.png"])
def test_image_ids_that_climb_out_are_refused_and_nothing_written(project, tmp_path, bad_id):
    """Issue 10: an id such as '../x.png' (from a store made before imports refused them) was
    rewritten silently; the export names it and writes nothing (nothing lands outside out_dir)."""
    out, images, items = project
    src = tmp_path / "x.png"
    src.write_bytes(b"IMG-x")
    images = {**images, bad_id: ImageRecord(bad_id, str(src), 8, 8, split="train")}
    items = [*items, Item(bad_id, "counting", "How many ships?", "1", id=9, status="accepted")]
    with pytest.raises(ExportError, match="leads out of the images folder"):
        export_dataset(items, images, out)
    assert not out.exists()
