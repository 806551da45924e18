"""Box conversions (round trips), answer parsing (goldens, junk), position words and GeoJSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlang_core import synthetic as syn
from sarlang_core.errors import RequestError
from sarlang_core.io import open_scene
from sarlang_core.vlm.boxes import (
    CONVENTIONS,
    ModelView,
    box_to_geojson_feature,
    boxes_to_feature_collection,
    canonical_convention,
    canonical_position,
    convention_for_model,
    from_scene,
    parse_answer,
    position_region,
    to_scene,
)

FAST = settings(max_examples=150, deadline=None)


def close(a, b, tol=1e-6):
    return all(math.isclose(x, y, rel_tol=tol, abs_tol=tol * 1e3) for x, y in zip(a, b))


# ---- conversions ------------------------------------------------------------------------------

def test_qwen25_absolute_pixels_of_the_resized_input():
    # a 2000 x 1000 viewport at (500, 300), shown to the model at 1000 x 500: model pixels are 2 scene px
    view = ModelView((500, 300, 2000, 1000), (1000, 500))
    assert to_scene((100, 50, 200, 150), "qwen2.5-vl", view) == (700.0, 400.0, 900.0, 600.0)
    assert from_scene((700, 400, 900, 600), "qwen2.5-vl", view) == (100.0, 50.0, 200.0, 150.0)


def test_normalised_conventions_ignore_the_input_size():
    view = ModelView((100, 0, 400, 200), (999, 123))
    assert to_scene((0, 0, 1000, 1000), "qwen2-vl", view) == (100.0, 0.0, 500.0, 200.0)
    assert to_scene((250, 500, 500, 1000), "qwen2-vl", view) == (200.0, 100.0, 300.0, 200.0)
    assert to_scene((25, 50, 50, 100), "geochat", view) == (200.0, 100.0, 300.0, 200.0)
    for alias in ("qwen3-vl", "InternVL", "earthdial"):
        assert to_scene((250, 500, 500, 1000), alias, view) == (200.0, 100.0, 300.0, 200.0)


def test_sarlang_is_xywh_in_original_crop_pixels():
    view = ModelView((1000, 2000, 512, 512), (256, 256))   # the resize does not matter
    assert to_scene((56.0, 191.0, 112.0, 122.0), "sarlang", view) == (1056.0, 2191.0, 1168.0, 2313.0)
    assert from_scene((1056.0, 2191.0, 1168.0, 2313.0), "sarlang", view) == (56.0, 191.0, 112.0, 122.0)


def test_corners_come_back_ordered_and_bad_input_is_a_request_error():
    view = ModelView((0, 0, 100, 100), (100, 100))
    assert to_scene((50, 60, 10, 20), "qwen2.5-vl", view) == (10.0, 20.0, 50.0, 60.0)
    with pytest.raises(RequestError, match="unknown box convention"):
        to_scene((0, 0, 1, 1), "yolo", view)
    with pytest.raises(RequestError):
        to_scene((0, 0, 1), "qwen2-vl", view)
    with pytest.raises(RequestError):
        to_scene((0, 0, float("nan"), 1), "qwen2-vl", view)
    with pytest.raises(RequestError):
        ModelView((0, 0, 0, 10), (10, 10))
    assert canonical_convention("Qwen2_5_VL") == "qwen2.5-vl"


def test_convention_for_model_names():
    assert convention_for_model("Qwen/Qwen2.5-VL-7B-Instruct") == "qwen2.5-vl"
    assert convention_for_model("Qwen2-VL-7B") == "qwen2-vl"
    assert convention_for_model("OpenGVLab/InternVL2_5-8B") == "qwen2-vl"
    assert convention_for_model("MBZUAI/geochat-7B") == "geochat"


coord = st.floats(-1e5, 1e5, allow_nan=False)
size = st.floats(1.0, 1e5, allow_nan=False)
views = st.builds(lambda x, y, w, h, W, H: ModelView((x, y, w, h), (W, H)),
                  coord, coord, size, size, st.integers(1, 4096), st.integers(1, 4096))


@FAST
@given(views, st.tuples(coord, coord, coord, coord), st.sampled_from(CONVENTIONS))
def test_scene_model_scene_round_trip(view, box, convention):
    scene_box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
    back = to_scene(from_scene(scene_box, convention, view), convention, view)
    assert close(back, scene_box)


@FAST
@given(views, st.tuples(st.floats(0, 1000), st.floats(0, 1000), st.floats(0, 1000), st.floats(0, 1000)),
       st.sampled_from(CONVENTIONS))
def test_model_scene_model_round_trip(view, numbers, convention):
    if convention == "sarlang":
        model_box = numbers
    else:  # as models write them: ordered corners
        model_box = (min(numbers[0], numbers[2]), min(numbers[1], numbers[3]),
                     max(numbers[0], numbers[2]), max(numbers[1], numbers[3]))
    back = from_scene(to_scene(model_box, convention, view), convention, view)
    assert close(back, model_box, 1e-6)


@FAST
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 2048), st.integers(1, 2048),
       st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_conventions_agree_with_each_other(w, h, W, H, frac):
    """One scene box, written in every convention, maps back to the same scene box."""
    view = ModelView((10, 20, w, h), (W, H))
    x0, x1 = sorted((frac[0] * w, frac[2] * w))
    y0, y1 = sorted((frac[1] * h, frac[3] * h))
    box = (10 + x0, 20 + y0, 10 + x1, 20 + y1)
    for conv in CONVENTIONS:
        assert close(to_scene(from_scene(box, conv, view), conv, view), box)
    q = from_scene(box, "qwen2.5-vl", view)
    n = from_scene(box, "qwen2-vl", view)
    assert close((q[0] / W * 1000, q[1] / H * 1000), n[:2])


# ---- parsing ----------------------------------------------------------------------------------

def test_qwen_json_in_fences_as_a_list():
    text = ('Here they are:\n```json\n[\n  {"bbox_2d": [10, 20, 110, 220], "label": "ship"},\n'
            '  {"label": "car", "bbox_2d": [5.5, 6, 7, 8]}\n]\n```')
    boxes = parse_answer(text).boxes
    assert [(b.coords, b.convention_hint, b.label) for b in boxes] == [
        ((10.0, 20.0, 110.0, 220.0), "qwen2.5-vl", "ship"), ((5.5, 6.0, 7.0, 8.0), "qwen2.5-vl", "car")]
    assert text[boxes[0].span[0]:boxes[0].span[1]].startswith('{"bbox_2d"')


def test_qwen_json_single_object_and_truncated_list():
    assert parse_answer('{"bbox_2d": [1, 2, 3, 4], "label": "tank"}').boxes[0].label == "tank"
    nested = '{"bbox_2d": [1, 2, 3, 4], "label": "ship", "attributes": {"moving": true}}'
    assert [(b.coords, b.convention_hint, b.label) for b in parse_answer(nested).boxes] == [
        ((1.0, 2.0, 3.0, 4.0), "qwen2.5-vl", "ship")]
    cut = '[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6,'   # max_tokens hit
    boxes = parse_answer(cut).boxes
    assert [b.coords for b in boxes] == [(1.0, 2.0, 3.0, 4.0)]


def test_ref_box_tags():
    ans = parse_answer("<ref>ship</ref><box>(12,34),(56,78)</box><box>(100,200),(300,400)</box>")
    assert [(b.coords, b.label, b.convention_hint) for b in ans.boxes] == [
        ((12.0, 34.0, 56.0, 78.0), "ship", "qwen2-vl"), ((100.0, 200.0, 300.0, 400.0), "ship", "qwen2-vl")]
    ans = parse_answer("<|object_ref_start|>car<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>")
    assert [(b.coords, b.label) for b in ans.boxes] == [((1.0, 2.0, 3.0, 4.0), "car")]
    # special tokens stripped by the server
    ans = parse_answer("The ship(120,40),(300,220) is moored.")
    assert [(b.coords, b.label, b.convention_hint) for b in ans.boxes] == [
        ((120.0, 40.0, 300.0, 220.0), "ship", "qwen2-vl")]


def test_internvl_box_lists():
    ans = parse_answer("<ref>tank</ref><box>[[1, 2, 3, 4], [5, 6, 7, 8]]</box> and <box>[[9,10,11,12]]</box>")
    assert [(b.coords, b.label) for b in ans.boxes] == [
        ((1.0, 2.0, 3.0, 4.0), "tank"), ((5.0, 6.0, 7.0, 8.0), "tank"), ((9.0, 10.0, 11.0, 12.0), "tank")]
    ans = parse_answer("<ref>tank</ref> is here and the other thing <box>[[9,10,11,12]]</box>")
    assert ans.boxes[0].label is None   # free text between the ref and the box


def test_geochat_boxes():
    ans = parse_answer("<p>ship</p> {<17><45><30><60>|<12>} and {<1><2><3><4>|0} and {<5><6><7><8>}")
    assert [(b.coords, b.label, b.angle, b.convention_hint) for b in ans.boxes] == [
        ((17.0, 45.0, 30.0, 60.0), "ship", 12.0, "geochat"), ((1.0, 2.0, 3.0, 4.0), None, 0.0, "geochat"),
        ((5.0, 6.0, 7.0, 8.0), None, None, "geochat")]


def test_bare_xywh_lists_are_sarlang_and_not_counted_twice():
    ans = parse_answer("The object present in the area [56.0, 191.0, 112.0, 122.0] is a ship.")
    assert [(b.coords, b.convention_hint) for b in ans.boxes] == [((56.0, 191.0, 112.0, 122.0), "sarlang")]
    ans = parse_answer('{"bbox_2d": [1, 2, 3, 4]} <box>[[5, 6, 7, 8]]</box>')
    assert [b.convention_hint for b in ans.boxes] == ["qwen2.5-vl", "qwen2-vl"]


@pytest.mark.parametrize("text, expected", [
    ("Top", ["top"]), ("center", ["center"]), ("The ships are in the centre.", ["center"]),
    ("bottom", ["bottom"]), ("mostly on the left", ["left"]), ("Right.", ["right"]),
    ("in the top left corner", ["top left"]), ("upper right", ["top right"]), ("lower-left", ["bottom left"]),
    ("the upper left-hand side", ["top left"]), ("middle right", ["center right"]),
    ("top, then bottom right and the top", ["top", "bottom right"]),
    ("left and right", ["left", "right"]), ("topology of a copyright leftover", []),
])
def test_position_words(text, expected):
    assert parse_answer(text).positions == expected


def test_position_regions_are_thirds():
    assert position_region("top", 300, 90) == (0.0, 0.0, 300.0, 30.0)
    assert position_region("Bottom", 300, 90) == (0.0, 60.0, 300.0, 90.0)
    assert position_region("left", 300, 90) == (0.0, 0.0, 100.0, 90.0)
    assert position_region("right", 300, 90) == (200.0, 0.0, 300.0, 90.0)
    assert position_region("centre", 300, 90) == (100.0, 30.0, 200.0, 60.0)
    assert position_region("upper-left", 300, 90) == (0.0, 0.0, 100.0, 30.0)
    assert position_region("lower right", 300, 90) == (200.0, 60.0, 300.0, 90.0)
    assert position_region("top center", 300, 90) == (100.0, 0.0, 200.0, 30.0)
    assert position_region("center left", 300, 90) == (0.0, 30.0, 100.0, 60.0)
    assert canonical_position("Middle") == "center"
    with pytest.raises(RequestError, match="not a position"):
        position_region("north", 10, 10)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_junk_never_raises(text):
    ans = parse_answer(text)
    assert isinstance(ans.boxes, list) and isinstance(ans.positions, list)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["{", "}", "[", "]", "<box>", "</box>", "<ref>", "</ref>", "<p>", "</p>", "(",
                                 ")", ",", "|", "<", ">", '"bbox_2d":', '"label":', "1", "-2.5", "1e999", " ",
                                 "top", "left", "```json", "\\", '"']), max_size=80).map("".join))
def test_junk_made_of_box_syntax_never_raises(text):
    for b in parse_answer(text).boxes:
        assert len(b.coords) == 4 and all(math.isfinite(v) for v in b.coords)


def test_long_junk_is_fast():
    import time
    text = ("{" * 5000) + ("<ref>" * 5000) + ("<box>" * 5000) + ("[1, 2, " * 5000) + ("(1,2)," * 5000)
    t0 = time.perf_counter()
    parse_answer(text)
    assert time.perf_counter() - t0 < 5.0
    assert parse_answer(None).boxes == [] and parse_answer(12).boxes == []


# ---- GeoJSON ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def geo_scene(tmp_path_factory):
    path = tmp_path_factory.mktemp("geo") / "s.tif"
    syn.write_scene(path, np.ones((64, 64), np.float32), overviews=())   # EPSG:32631, 10 m pixels
    with open_scene(path) as scene:
        yield scene


def test_feature_in_map_coordinates(geo_scene):
    f = box_to_geojson_feature((10, 20, 30, 40), "ship", geo_scene, convention="qwen2.5-vl")
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
    ring = f["geometry"]["coordinates"][0]
    assert len(ring) == 5 and ring[0] == ring[-1]
    x0, y0 = syn.DEFAULT_ORIGIN
    xs, ys = sorted({p[0] for p in ring}), sorted({p[1] for p in ring})
    assert xs == [x0 + 100, x0 + 300] and ys == [y0 - 400, y0 - 200]
    area = sum(ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1] for i in range(4))
    assert area > 0    # counter-clockwise
    assert f["properties"] == {"label": "ship", "convention": "qwen2.5-vl", "pixel_box": [10.0, 20.0, 30.0, 40.0]}


def test_feature_collection_is_rfc7946_lonlat(geo_scene):
    fc = boxes_to_feature_collection([((0, 0, 64, 64), "scene"), ((10, 20, 30, 40), "ship", "sarlang")], geo_scene)
    assert fc["type"] == "FeatureCollection" and "crs" not in fc
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    for lon, lat in ring:
        assert 2.9 < lon < 3.1 and 51.3 < lat < 51.5   # UTM 31N origin (500000, 5700000)
    lon, lat = geo_scene.pixel_to_lonlat(0, 0)
    assert any(math.isclose(p[0], lon) and math.isclose(p[1], lat) for p in ring)
    assert fc["features"][1]["properties"]["convention"] == "sarlang"
    json.dumps(fc)


def test_feature_collection_without_lonlat_names_the_crs():
    class MapOnly:   # a scene PROJ cannot take to lon/lat
        crs = None
        crs_wkt = 'LOCAL_CS["site grid"]'

        def pixel_to_map(self, col, row):
            return 1000 + col * 2.0, 500 - row * 2.0

        def pixel_to_lonlat(self, col, row):
            return None

    fc = boxes_to_feature_collection([((1, 2, 3, 4), "car")], MapOnly())
    assert fc["crs"] == {"type": "name", "properties": {"name": 'LOCAL_CS["site grid"]'}}
    ring = fc["features"][0]["geometry"]["coordinates"][0]
    assert sorted({p[0] for p in ring}) == [1002.0, 1006.0]


def test_feature_collection_names_epsg_when_known(geo_scene, monkeypatch):
    monkeypatch.setattr(type(geo_scene), "pixel_to_lonlat", lambda self, c, r: None)
    fc = boxes_to_feature_collection([((1, 2, 3, 4), "car")], geo_scene)
    assert fc["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32631"
