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
