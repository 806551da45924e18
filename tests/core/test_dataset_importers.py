"""Importers: COCO (SARDet-100K), SARLANG-1M JSON / CSV as released, SAR/optical pairs."""

import json

import pytest
from PIL import Image

from sarlang_core.datasets.importers import (
    CAPTION_PROMPTS,
    DatasetError,
    Problem,
    guess_type,
    import_coco,
    import_pairs,
    import_sarlang_csv,
    import_sarlang_json,
)
from sarlang_core.errors import SarlangError


def _problem(res, where, text):
    hits = [p for p in res.problems if p.where == where and text in p.message]
    assert hits, f"no problem at {where!r} containing {text!r}: {res.problems}"
    return hits[0]


# -------------------------------------------------------------------------------------------- COCO

def _coco(tmp_path, data, name="ann.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


GOOD = {
    "categories": [{"id": 1, "name": "ship"}, {"id": 2, "name": "aircraft"}],
    "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 80},
               {"id": 2, "file_name": "b.png", "width": 50, "height": 50}],
    "annotations": [{"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40]},
                    {"id": 11, "image_id": 2, "category_id": 2, "bbox": [0.5, 1.5, 2, 3]}],
}


def test_coco_golden(tmp_path):
    p = _coco(tmp_path, GOOD)
    res = import_coco(p)
    assert res.problems == []
    assert [(i.id, i.path, i.width, i.height, i.source) for i in res.images] == [
        ("a.png", "a.png", 100, 80, str(p)), ("b.png", "b.png", 50, 50, str(p))]
    assert [(b.image_id, b.category, b.bbox, b.annotation_id) for b in res.boxes] == [
        ("a.png", "ship", (10.0, 20.0, 30.0, 40.0), "10"), ("b.png", "aircraft", (0.5, 1.5, 2.0, 3.0), "11")]
    assert res.items == []


def test_coco_every_bad_record_is_reported_and_the_rest_imported(tmp_path):
    data = {
        "categories": [{"id": 1, "name": "ship"}, {"id": 1, "name": "again"}, {"name": "noid"}],
        "images": [
            {"id": 1, "file_name": "a.png", "width": 100, "height": 80},
            {"id": 1, "file_name": "dup_id.png", "width": 10, "height": 10},
            {"id": 3, "file_name": "a.png", "width": 10, "height": 10},
            {"id": 4, "file_name": "zero.png", "width": 0, "height": 10},
            {"id": 5, "file_name": "nosize.png"},
            {"file_name": "noid.png", "width": 1, "height": 1},
            "junk",
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5]},       # fine
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5]},       # duplicate id
            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [10, 10, 5, 5]},       # unknown category
            {"id": 3, "image_id": 77, "category_id": 1, "bbox": [10, 10, 5, 5]},      # unknown image
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [90, 70, 20, 20]},     # partly outside
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [-30, 5, 10, 10]},     # fully outside
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},         # zero width
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5]},            # malformed bbox
            {"id": 8, "image_id": 1, "category_id": 1, "bbox": [1, "x", 5, 5]},       # malformed bbox
            {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},                  # no id
        ],
    }
    p = _coco(tmp_path, data)
    res = import_coco(p)
    assert res.problems and all(pr.file == str(p) for pr in res.problems)
    assert [i.id for i in res.images] == ["a.png"]
    assert [(b.annotation_id, b.bbox) for b in res.boxes] == [("1", (10.0, 10.0, 5.0, 5.0)),
                                                              ("4", (90.0, 70.0, 10.0, 10.0))]
    _problem(res, "category id 1", "duplicate category id")
    _problem(res, "categories[2]", "malformed category")
    _problem(res, "image id 1", "duplicate image id")
    _problem(res, "image id 3", "duplicate file_name")
    _problem(res, "image id 4", "non-positive image size")
    _problem(res, "image id 5", "width/height")
    _problem(res, "images[5]", "malformed image record")
    _problem(res, "images[6]", "malformed image record")
    _problem(res, "annotation id 1", "duplicate annotation id")
    _problem(res, "annotation id 2", "unknown category id 9")
    _problem(res, "annotation id 3", "unknown image id 77")
    _problem(res, "annotation id 4", "clipped to [90, 70, 10, 10]")
    _problem(res, "annotation id 5", "fully outside")
    _problem(res, "annotation id 6", "non-positive box size")
    _problem(res, "annotation id 7", "malformed bbox")
    _problem(res, "annotation id 8", "malformed bbox")
    _problem(res, "annotations[9]", "malformed annotation")
    assert len(res.problems) == 17


def test_coco_missing_image_files(tmp_path):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    (imgs / "a.png").write_bytes(b"not even a png: existence is all that is checked")
    res = import_coco(_coco(tmp_path, GOOD), images_dir=imgs)
    assert [(i.id, i.path) for i in res.images] == [("a.png", str(imgs / "a.png"))]
    assert [b.image_id for b in res.boxes] == ["a.png"]          # b.png's box is skipped with it
    _problem(res, "image id 2", "b.png: image file missing")
    assert len(res.problems) == 1


def test_coco_unusable_files_raise(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        import_coco(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a JSON"):
        import_coco(tmp_path / "bad.json")
    with pytest.raises(DatasetError, match="not COCO"):
        import_coco(_coco(tmp_path, [1, 2]))
    assert issubclass(DatasetError, SarlangError)


def test_coco_sections_not_lists(tmp_path):
    res = import_coco(_coco(tmp_path, {"images": {}, "annotations": 3}))
    assert res.images == [] and res.boxes == []
    assert {p.where for p in res.problems} == {"images", "annotations"}


# ------------------------------------------------------------------------------------- guess_type

@pytest.mark.parametrize("q, t", [
    ("How many ships are there in the image?", "counting"),
    ("Where are most cars positioned within the image?", "positioning"),
    ("What is the object present in the area [1.0, 2.0, 3.0, 4.0]?", "referring"),
    ("Are there any tanks in the image?", "identification"),
    ("Is there a ship located on the left side of the image?", "identification"),
    ("What is the main object in the image?", "classification"),
    ("What is the object in the image?", "classification"),
    ("Please describe the image in detail.", "caption_detailed"),
    ("Give a short caption of this image.", "caption_concise"),
    ("What shape is the runway?", "general"),
    ("<image>The classes are: tank, car, aircraft, harbor, bridge, ship. How many cars are there?", "counting"),
])
def test_guess_type(q, t):
    assert guess_type(q) == t


# ------------------------------------------------------------------------------------------- JSON

def _rec(q, a, img="x/a.png"):
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
            "images": [img]}


def test_sarlang_json_golden_and_bad_records(tmp_path):
    data = [
        _rec("<image>How many ships are there in the image?", "3"),
        _rec("<image>What is the object present in the area [1.0, 2.0, 3.0, 4.0]?", "ship", "x/b.png"),
        {"messages": [], "images": ["x/a.png"]},                                  # 2: no turns
        {"messages": [{"role": "user", "content": "q"}], "images": ["x/a.png"]},  # 3: odd
        {"images": ["x/a.png"]},                                                  # 4: no messages
        _rec("<image>Is there a ship?", "yes", img=""),                           # 5: empty image
        {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}],
         "images": ["x/a.png"]},                                                  # 6: wrong order
        _rec("<image>", "yes"),                                                   # 7: empty question
        "junk",                                                                   # 8
    ]
    p = tmp_path / "vqa.json"
    p.write_text(json.dumps(data))
    res = import_sarlang_json(p)
    assert [(i.image_id, i.type, i.question, i.answer, i.source) for i in res.items] == [
        ("x/a.png", "counting", "How many ships are there in the image?", "3", "imported"),
        ("x/b.png", "referring", "What is the object present in the area [1.0, 2.0, 3.0, 4.0]?", "ship",
         "imported")]
    assert [(i.id, i.width, i.height) for i in res.images] == [("x/a.png", 0, 0), ("x/b.png", 0, 0)]
    assert sorted(p_.where for p_ in res.problems) == [f"record {k}" for k in range(2, 9)]
    assert res.problems and all(p_.file == str(p) for p_ in res.problems)


def test_sarlang_json_multi_turn_and_images_dir(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("L", (64, 32)).save(d / "a.png")
    (d / "broken.png").write_bytes(b"nope")
    rec = _rec("<image>Is there a ship?", "yes", "a.png")
    rec["messages"] += [{"role": "user", "content": "Where are most ships positioned within the image?"},
                        {"role": "assistant", "content": "left"}]
    data = [rec, _rec("<image>Is there a car?", "no", "missing.png"), _rec("<image>x?", "y", "broken.png")]
    p = tmp_path / "v.json"
    p.write_text(json.dumps(data))
    res = import_sarlang_json(p, images_dir=d)
    assert [(i.type, i.answer) for i in res.items] == [("identification", "yes"), ("positioning", "left")]
    assert [(i.id, i.width, i.height) for i in res.images] == [("a.png", 64, 32)]
    _problem(res, "record 1", "missing.png: image file missing")
    _problem(res, "record 2", "not a readable image")


def test_sarlang_json_unusable(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps({"messages": []}))
    with pytest.raises(DatasetError, match="not a SARLANG JSON"):
        import_sarlang_json(p)


# -------------------------------------------------------------------------------------------- CSV

def test_csv_qa_with_bom_quotes_and_bad_rows(tmp_path):
    p = tmp_path / "vqa.csv"
    text = ("\ufeffImage Name, Question , Answer\r\n"
            "a.png,How many ships are there in the image?,2\r\n"
            'b.png,"What is the object present in the area [1.0, 2.0, 3.0, 4.0]?",ship\r\n'
            "c.png,only two\r\n"                                   # line 4: too few columns
            "\r\n"                                                 # blank line: skipped silently
            'd.png,"A question spanning\ntwo lines, with a comma?","yes, it does"\r\n'   # lines 6-7
            "e.png,,no\r\n"                                        # line 8: empty question
            "f.png,Is there a tank?,no,extra\r\n")                 # line 9: too many columns
    p.write_bytes(text.encode("utf-8"))
    res = import_sarlang_csv(p)
    assert [(i.image_id, i.type, i.question, i.answer, i.meta["line"]) for i in res.items] == [
        ("a.png", "counting", "How many ships are there in the image?", "2", 2),
        ("b.png", "referring", "What is the object present in the area [1.0, 2.0, 3.0, 4.0]?", "ship", 3),
        ("d.png", "general", "A question spanning\ntwo lines, with a comma?", "yes, it does", 6),
    ]
    assert [(p_.file, p_.where) for p_ in res.problems] == [(str(p), 4), (str(p), 8), (str(p), 9)]
    assert "expected 3 columns, got 2" in res.problems[0].message
    assert "empty Question" in res.problems[1].message


def test_csv_captions(tmp_path):
    p = tmp_path / "captions_detailed.csv"
    p.write_text('Image Name,Caption\na.png,"A harbour, with ships."\nb.png,\n', encoding="utf-8")
    res = import_sarlang_csv(p)
    assert [(i.image_id, i.type, i.question, i.answer) for i in res.items] == [
        ("a.png", "caption_detailed", CAPTION_PROMPTS["caption_detailed"], "A harbour, with ships.")]
    assert [(pr.where, pr.message) for pr in res.problems] == [(3, "empty Caption")]
    q = tmp_path / "caps.csv"
    q.write_text("image name,caption\na.png,Ships.\n", encoding="utf-8")
    assert import_sarlang_csv(q).items[0].type == "caption_concise"
    assert import_sarlang_csv(q, caption_type="caption_detailed").items[0].type == "caption_detailed"


def test_csv_images_dir(tmp_path):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.new("L", (20, 10)).save(d / "a.png")
    p = tmp_path / "c.csv"
    p.write_text("Image Name,Caption\na.png,one\nb.png,two\na.png,three\n", encoding="utf-8")
    res = import_sarlang_csv(p, images_dir=d)
    assert [i.answer for i in res.items] == ["one", "three"]
    assert [(i.id, i.width, i.height, i.path) for i in res.images] == [("a.png", 20, 10, str(d / "a.png"))]
    assert [(pr.where, "missing" in pr.message) for pr in res.problems] == [(3, True)]


def test_csv_unusable(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        import_sarlang_csv(tmp_path / "none.csv")
    p = tmp_path / "x.csv"
    p.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DatasetError, match="not a SARLANG CSV"):
        import_sarlang_csv(p)
    p.write_bytes(b"\xff\xfe\x00\x01binary")
    with pytest.raises(DatasetError):
        import_sarlang_csv(p)
    p.write_text("")
    with pytest.raises(DatasetError, match="not a SARLANG CSV"):
        import_sarlang_csv(p)


# ------------------------------------------------------------------------------------------ pairs

def test_pairs(tmp_path):
    sar, opt = tmp_path / "sar", tmp_path / "opt"
    sar.mkdir()
    opt.mkdir()
    Image.new("L", (40, 30)).save(sar / "a.tif")
    Image.new("RGB", (40, 30)).save(opt / "a.png")
    Image.new("L", (16, 16)).save(sar / "b.png")
    Image.new("RGB", (8, 8)).save(opt / "b.png")                 # size mismatch: kept, reported
    Image.new("L", (8, 8)).save(sar / "only_sar.png")
    Image.new("RGB", (8, 8)).save(opt / "only_opt.jpg")
    (sar / "c.png").write_bytes(b"broken")
    Image.new("RGB", (8, 8)).save(opt / "c.png")
    (sar / "notes.txt").write_text("ignored")
    res = import_pairs(sar, opt)
    assert [(i.id, i.path, i.optical_path, i.width, i.height) for i in res.images] == [
        ("a.tif", str(sar / "a.tif"), str(opt / "a.png"), 40, 30),
        ("b.png", str(sar / "b.png"), str(opt / "b.png"), 16, 16)]
    got = {(p.file, p.where): p.message for p in res.problems}
    assert "differs" in got[(str(opt / "b.png"), "b.png")]
    assert "not a readable image" in got[(str(sar / "c.png"), "c.png")]
    assert got[(str(sar / "only_sar.png"), "only_sar.png")] == "SAR image has no optical image"
    assert got[(str(opt / "only_opt.jpg"), "only_opt.jpg")] == "optical image has no SAR image"
    assert len(res.problems) == 4
    with pytest.raises(DatasetError, match="optical folder not found"):
        import_pairs(sar, tmp_path / "missing")


def test_problem_is_plain():
    p = Problem("f.csv", 3, "bad")
    assert (p.file, p.where, p.message) == ("f.csv", 3, "bad")
