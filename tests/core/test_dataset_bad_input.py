"""Issue 10, datasets: float boxes kept as they are, paths that climb out of the images folder,
malformed records reported one by one (each with file and id or index) while the rest imports."""

from __future__ import annotations

import json

from sarlang_core.datasets.importers import clip_box, import_coco


def _coco(tmp_path, data, name="ann.json"):
    p = tmp_path / name
    p.write_text(json.dumps(data))
    return p


# ------------------------------------------------------------------------------ case 1: float boxes
def test_float_boxes_inside_import_unchanged_and_unreported(tmp_path):
    boxes = [[172.6, 88.8, 31.4, 69.4], [400.3, 0.1, 111.7, 10.2], [0.0, 442.9, 0.7, 69.1],
             [511.9, 511.9, 0.1, 0.1], [0.1, 0.2, 511.9, 511.8]]
    data = {"categories": [{"id": 1, "name": "ship"}],
            "images": [{"id": 1, "file_name": "a.png", "width": 512, "height": 512}],
            "annotations": [{"id": k, "image_id": 1, "category_id": 1, "bbox": b} for k, b in enumerate(boxes)]}
    res = import_coco(_coco(tmp_path, data))
    assert res.problems == []
    assert [list(b.bbox) for b in res.boxes] == boxes        # bit for bit what the file says


def test_boxes_really_outside_are_clipped_on_the_crossing_sides_only():
    assert clip_box((500.5, 10.25, 20.0, 30.1), 512, 512) == (500.5, 10.25, 11.5, 30.1)
    assert clip_box((-5.0, 10.25, 20.0, 30.1), 512, 512) == (0.0, 10.25, 15.0, 30.1)
    assert clip_box((600.0, 0.0, 5.0, 5.0), 512, 512) is None
    assert clip_box((172.6, 88.8, 31.4, 69.4), 512, 512) == (172.6, 88.8, 31.4, 69.4)


# ------------------------------------------------------------------------------ case 3: paths
def _png(path, size=(8, 6)):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size).save(path)


def test_paths_out_of_the_images_folder_are_refused_per_record(tmp_path):
    from sarlang_core.datasets.importers import import_sarlang_csv, import_sarlang_json

    imgs = tmp_path / "imgs"
    _png(imgs / "ok.png")
    _png(tmp_path / "secret.png")
    (imgs / "link.png").symlink_to(tmp_path / "secret.png")
    names = ["ok.png", "../secret.png", str(tmp_path / "secret.png"), "link.png", "sub/../../secret.png"]
    data = {"categories": [{"id": 1, "name": "ship"}],
            "images": [{"id": k, "file_name": n, "width": 8, "height": 6} for k, n in enumerate(names)],
            "annotations": [{"id": k, "image_id": k, "category_id": 1, "bbox": [1, 1, 2, 2]}
                            for k in range(len(names))]}
    for images_dir in (imgs, None):
        res = import_coco(_coco(tmp_path, data), images_dir)
        expect = ["ok.png"] + (["link.png"] if images_dir is None else [])
        assert [i.id for i in res.images] == expect
        assert {b.image_id for b in res.boxes} == set(expect)
        refused = sorted(p.where for p in res.problems)
        assert refused == sorted(f"image id {k}" for k, n in enumerate(names) if n not in expect), res.problems
    recs = [{"messages": [{"role": "user", "content": "<image>How many ships?"},
                          {"role": "assistant", "content": "1"}], "images": [n]} for n in names]
    res = import_sarlang_json(_coco(tmp_path, recs, "s.json"), imgs)
    assert [i.image_id for i in res.items] == ["ok.png"]
    assert sorted(p.where for p in res.problems) == [f"record {k}" for k in range(1, len(names))]
    csv = tmp_path / "c.csv"
    csv.write_text("Image Name,Caption\n" + "".join(f"{n},a caption\n" for n in names))
    res = import_sarlang_csv(csv, imgs)
    assert [i.image_id for i in res.items] == ["ok.png"]
    assert sorted(p.where for p in res.problems) == [3, 4, 5, 6]


def test_pairs_skip_a_symlink_that_leads_out_of_the_folder(tmp_path):
    from sarlang_core.datasets.importers import import_pairs

    _png(tmp_path / "sar" / "a.png")
    _png(tmp_path / "opt" / "a.png")
    _png(tmp_path / "opt" / "b.png")
    _png(tmp_path / "elsewhere" / "b.png")
    (tmp_path / "sar" / "b.png").symlink_to(tmp_path / "elsewhere" / "b.png")
    res = import_pairs(tmp_path / "sar", tmp_path / "opt")
    assert [i.id for i in res.images] == ["a.png"]
    assert any(p.where == "b.png" and "outside" in p.message for p in res.problems)


# ------------------------------------------------------------------------------ case 4: bad records
def test_malformed_coco_records_are_reported_each_and_the_rest_imports(tmp_path):
    data = {"categories": [{"id": 1, "name": "ship"}, {"id": {"x": 1}, "name": "car"}, {"id": [2], "name": "tank"}],
            "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64},
                       {"id": {"a": 1}, "file_name": "b.png", "width": 64, "height": 64},
                       {"id": [3], "file_name": "c.png", "width": 64, "height": 64},
                       {"id": 4, "file_name": "d.png", "width": 1e300, "height": 64},
                       {"id": 5, "file_name": "e.png", "width": float("nan"), "height": 64},
                       {"id": 6, "file_name": "f.png", "width": -64, "height": 64},
                       {"id": 7, "file_name": "g.png", "width": 64, "height": 64}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": {"k": 2}, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 3, "image_id": [1], "category_id": 1, "bbox": [1, 1, 5, 5]},
                            {"id": 4, "image_id": 1, "category_id": {"c": 1}, "bbox": [1, 1, 5, 5]},
                            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1e300, 1, 5, 5]},
                            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [[[[1]]], 1, 5, 5]},
                            {"id": 7, "image_id": 7, "category_id": 1, "bbox": [2, 2, 5, 5]}]}
    p = tmp_path / "ann.json"
    p.write_text(json.dumps(data).replace("NaN", "NaN"))
    res = import_coco(p)
    assert [i.id for i in res.images] == ["a.png", "g.png"]
    assert [b.annotation_id for b in res.boxes] == ["1", "7"]
    where = sorted(str(x.where) for x in res.problems)
    assert where == sorted(["categories[1]", "categories[2]", "images[1]", "images[2]", "image id 4",
                            "image id 5", "image id 6", "annotations[1]", "annotation id 3",
                            "annotation id 4", "annotation id 5", "annotation id 6"]), res.problems
    assert all(x.file == str(p) for x in res.problems)


def test_sizes_that_do_not_fit_the_store_never_abort_the_import(tmp_path):
    from sarlang_core.services.datasets import import_into

    data = {"categories": [{"id": 1, "name": "ship"}],
            "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64},
                       {"id": 2, "file_name": "big.png", "width": 1e300, "height": 1e300}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}
    summary = import_into(tmp_path / "p.db", "coco", _coco(tmp_path, data))
    assert summary.done["images"] == 1 and summary.done["boxes"] == 1
    assert any("image id 2" in line and "big.png" in line for line in summary.problems)


def test_a_deeply_nested_record_is_reported_and_the_others_import(tmp_path):
    from sarlang_core.datasets.importers import import_sarlang_json

    deep = "[" * 100_000 + "]" * 100_000
    good = {"messages": [{"role": "user", "content": "<image>How many ships?"},
                         {"role": "assistant", "content": "2"}], "images": ["a.png"]}
    p = tmp_path / "deep.json"
    p.write_text("[" + json.dumps(good) + ', {"messages": ' + deep + ', "images": ["b.png"]}, '
                 + json.dumps(good).replace("a.png", "c.png") + ', "x]} \\\\ \\\" ["' + "]")
    res = import_sarlang_json(p)
    assert [i.image_id for i in res.items] == ["a.png", "c.png"]
    assert [(x.file, x.where) for x in res.problems] == [(str(p), "record 1"), (str(p), "record 3")]
    assert "nested too deeply" in res.problems[0].message

    data = {"categories": [{"id": 1, "name": "ship"}],
            "images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 64}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}, "DEEP",
                            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]}]}
    p = tmp_path / "coco.json"
    p.write_text(json.dumps(data).replace('"DEEP"', '{"id": 2, "bbox": ' + deep + "}"))
    res = import_coco(p)
    assert [b.annotation_id for b in res.boxes] == ["1", "3"]
    assert [(x.where, "nested too deeply" in x.message) for x in res.problems] == [("annotations[1]", True)]
