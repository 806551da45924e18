"""Per-word maps (sarlang_core.explain, services.explain) on tiny real models built at test time:
shapes and ranges for odd image sizes, every method and family, one forward per answer, hooks
released, maps of a region on that region, teacher forcing, adapters, bad input."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest
import rasterio

from sarlang_core.errors import CancelledError, ExplainError, RequestError
from sarlang_core.explain import METHODS, answer_words, explain_answer, layout_for
from sarlang_core.explain.hooks import adapter_enabled, hf_model
from sarlang_core.explain.maps import NODATA, Placement
from sarlang_core.progress import CancelToken
from sarlang_core.services import SceneSession
from sarlang_core.services.ask import AskRequest
from sarlang_core.services.explain import (
    ExplainRequest,
    explain_scene,
    explanation_unavailable,
    text_words,
    write_outputs,
)
from sarlang_core.services.models import open_backend
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.local import LocalBackend

from .vlm_fixtures import sar_image

TURNS = [ChatTurn("user", "What is in the image?")]
ANSWER = "A ship near the harbor, three buildings and a bridge."


def _loaded(model, adapter=None):
    backend = LocalBackend(model, adapter, device="cpu")
    backend.load()
    yield backend
    backend.unload()


@pytest.fixture(scope="module")
def qwen(tiny_qwen):
    yield from _loaded(tiny_qwen)


@pytest.fixture(scope="module")
def llava(tiny_llava):
    yield from _loaded(tiny_llava)


@pytest.fixture(scope="module")
def qwen_lora(tiny_qwen, tiny_lora):
    yield from _loaded(tiny_qwen, tiny_lora)


@pytest.fixture
def session(sar_scene):
    s = SceneSession.open(sar_scene[0])
    yield s
    s.close()


def _ids(backend, text=ANSWER):
    return backend.processor.tokenizer(text, add_special_tokens=False)["input_ids"]


def _explain(backend, image, method="gradcam", text=ANSWER, **kw):
    inputs = backend.prepare_inputs(image, TURNS)
    return explain_answer(backend.model, backend.processor, backend.family, inputs, _ids(backend, text),
                          image_size=image.size, method_name=method, **kw)


@pytest.mark.parametrize("method, size", [(m, (123, 77)) for m in sorted(METHODS)] + [("gradcam", (57, 250))])
def test_qwen_maps_are_finite_in_unit_range_and_shaped_by_the_grid(qwen, method, size):
    h, w = size
    img = sar_image(h, w, seed=h)
    r = _explain(qwen, img, method)
    gw, gh = qwen.model_input_size(w, h)   # smart_resize: sides multiples of 28
    tokens = (gh // 28, gw // 28)
    assert r.grid == (tokens if method != "gradxinput" else (2 * tokens[0], 2 * tokens[1]))
    assert [m.text for m in r.words] == [w.text for w in r.all_words] == [
        "A", "ship", "near", "the", "harbor", "three", "buildings", "and", "a", "bridge"]
    for m in r.words:
        assert m.scores.shape == r.grid and m.scores.dtype == np.float32
        assert np.isfinite(m.scores).all() and m.scores.min() >= 0 and m.scores.max() <= 1
        assert m.peak >= 0 and (m.peak == 0 or m.scores[m.peak_cell] == 1.0)
    assert r.covered == (0.0, 0.0, float(w), float(h))


@pytest.fixture(scope="module")
def qwen2(tmp_path_factory):
    from sarlang_core.vlm.tiny import build_tiny_qwen2_vl

    yield from _loaded(build_tiny_qwen2_vl(tmp_path_factory.mktemp("qwen2-vl") / "tiny-qwen2-vl"))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_qwen2_vl_maps_on_its_merged_grid(qwen2, method):
    img = sar_image(123, 77)
    r = _explain(qwen2, img, method)
    assert qwen2.family == "qwen2_vl"
    assert r.grid == ((4, 3) if method != "gradxinput" else (8, 6))     # 112 x 84 px after smart_resize
    assert r.covered == (0.0, 0.0, 77.0, 123.0)
    assert all(np.isfinite(m.scores).all() and 0 <= m.scores.min() <= m.scores.max() <= 1 for m in r.words)
    assert max(m.peak for m in r.words) > 0


@pytest.mark.parametrize("method", sorted(METHODS))
def test_llava_grid_covers_the_centre_crop(llava, method):
    img = sar_image(300, 400)
    r = _explain(llava, img, method)
    assert r.grid == (8, 8)                     # 112 px crop / 14 px patches, CLS dropped
    assert r.covered == pytest.approx((50.0, 0.0, 350.0, 300.0))   # the square the processor keeps
    assert all(np.isfinite(m.scores).all() and 0 <= m.scores.min() <= m.scores.max() <= 1 for m in r.words)


def test_a_word_in_pieces_is_one_target(qwen):
    text, words = answer_words(qwen.processor.tokenizer, _ids(qwen, "Buildings ponies"))
    assert text == "Buildings ponies"
    spans = [w.tokens for w in words]
    assert all(b > a for a, b in spans) and spans[0][1] == spans[1][0]    # contiguous, none lost
    assert any(b - a > 1 for a, b in spans)                                # the tiny BPE splits at least one
    assert [(w.index, w.text) for w in words] == [(s.index, s.text) for s in text_words(text)]


def test_one_forward_pass_for_every_word(qwen):
    calls = []
    lm = hf_model(qwen.model).model.language_model
    handle = lm.register_forward_hook(lambda *a: calls.append(1))
    try:
        r = _explain(qwen, sar_image(112, 112))
    finally:
        handle.remove()
    assert len(r.words) == 10 and len(calls) == 1


def test_hooks_and_attention_are_released_and_memory_does_not_grow(qwen):
    img = sar_image(56, 84)
    visual = layout_for("qwen2_5_vl").module(hf_model(qwen.model))
    impl = hf_model(qwen.model).config._attn_implementation

    def live_tensors():
        gc.collect()
        return sum(1 for o in gc.get_objects() if type(o).__name__ in ("Tensor", "Parameter"))

    for method in METHODS:   # warm-up: lazily built caches are not leaks
        _explain(qwen, img, method, text="ship harbor")
    before = live_tensors()
    for k in range(50):      # the two methods that hook (the visual tokens; eager attention)
        _explain(qwen, img, ("gradcam", "attention")[k % 2], text="ship harbor")
    assert not visual._forward_hooks
    assert hf_model(qwen.model).config._attn_implementation == impl
    assert live_tensors() <= before


def test_hooks_are_released_when_the_work_fails(qwen):
    visual = layout_for("qwen2_5_vl").module(hf_model(qwen.model))
    cancel = CancelToken()
    cancel.cancel()
    inputs = qwen.prepare_inputs(sar_image(112, 112), TURNS)
    with pytest.raises(CancelledError):
        explain_answer(qwen.model, qwen.processor, "qwen2_5_vl", inputs, _ids(qwen), image_size=(112, 112),
                       cancel=cancel)
    assert not visual._forward_hooks


def test_teacher_forced_answer_gives_the_maps_of_the_generated_one(qwen, session):
    ask = AskRequest("What is in the image?", pipeline=session_pipeline(), max_pixels=200 * 200,
                     config=GenerationConfig(max_new_tokens=12))
    generated = explain_scene(qwen, session, ExplainRequest(ask))
    assert generated.generated and generated.answer
    forced = explain_scene(qwen, session, ExplainRequest(ask, answer=generated.answer))
    assert not forced.generated and forced.answer == generated.answer
    assert [w.text for w in forced.words] == [w.text for w in generated.words]
    for a, b in zip(forced.words, generated.words):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def session_pipeline():
    from sarlang_core.preprocess.pipeline import Pipeline

    return Pipeline()


def test_region_map_lies_exactly_on_the_region(qwen, session, tmp_path):
    rect = (101.0, 57.0, 203.0, 149.0)
    ask = AskRequest("What is here?", source="region", rect=rect)
    r = explain_scene(qwen, session, ExplainRequest(ask, answer="A ship and a harbor."))
    assert r.placement.rect == pytest.approx((101.0, 57.0, 304.0, 206.0))
    words = json.loads(write_outputs(r, session.scene, tmp_path).read_text())
    assert words["schema"] == "sarlang.explain/1" and [w["text"] for w in words["words"]] == [
        "A", "ship", "and", "a", "harbor"]
    for rec in words["words"]:
        x, y = rec["peak_pixel"]
        assert 101 <= x <= 304 and 57 <= y <= 206
        assert rec["peak_map"] == pytest.approx(list(session.scene.pixel_to_map(x, y)))
        assert (tmp_path / rec["png"]).stat().st_size > 0
        with rasterio.open(tmp_path / rec["geotiff"]) as ds:
            assert ds.crs == session.scene.crs and ds.dtypes[0] == "float32" and ds.nodata == NODATA
            assert ds.width == session.scene.width    # whole scene at full resolution (512 <= 2048)
            band = ds.read(1)
            valid = np.argwhere(band != NODATA)
            assert valid[:, 0].min() == 57 and valid[:, 0].max() == 205
            assert valid[:, 1].min() == 101 and valid[:, 1].max() == 303
            assert band[band != NODATA].max() <= 1.0 and band[band != NODATA].min() >= 0.0
            # the raster's transform puts pixel (x, y) where the scene puts it
            assert ds.transform @ (150, 100) == pytest.approx(session.scene.pixel_to_map(150, 100))


def test_placement_chain_for_a_downsampled_scene():
    # a 4000 x 3000 crop sent as 1000 x 750, a grid covering the whole image
    p = Placement.of((26, 35), (0.0, 0.0, 1000.0, 750.0), (1000, 750), (500.0, 200.0, 4000.0, 3000.0))
    assert p.rect == (500.0, 200.0, 4500.0, 3200.0)
    assert p.cell_centre(0, 0) == pytest.approx((500 + 4000 / 35 / 2, 200 + 3000 / 26 / 2))
    scores = np.zeros((26, 35), np.float32)
    scores[3, 7] = 1.0
    xs, ys = np.array([p.cell_centre(3, 7)[0], 100.0]), np.array([p.cell_centre(3, 7)[1]])
    out = p.sample(scores, xs, ys)
    assert out[0, 0] == pytest.approx(1.0) and out[0, 1] == NODATA


def test_adapter_off_gives_the_base_model_and_is_switched_back_on(qwen_lora, qwen):
    img = sar_image(112, 112)
    with_lora = _explain(qwen_lora, img)
    with adapter_enabled(qwen_lora.model, False):
        base_via_switch = _explain(qwen_lora, img)
    base = _explain(qwen, img)
    for b, c in zip(base_via_switch.words, base.words):
        np.testing.assert_allclose(b.scores, c.scores, atol=1e-5)
    assert any(not np.allclose(a.scores, c.scores, atol=1e-3) for a, c in zip(with_lora.words, base.words))
    again = _explain(qwen_lora, img)     # the adapter is on again afterwards
    for a, b in zip(with_lora.words, again.words):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_bad_input_is_refused_with_a_clear_message(qwen, session):
    img = sar_image(112, 112)
    with pytest.raises(ExplainError, match="not in the answer: bridge.*its words: A, ship"):
        _explain(qwen, img, text="A ship", words=["bridge"])
    with pytest.raises(ExplainError, match="empty"):
        _explain(qwen, img, text="")
    with pytest.raises(ExplainError, match="no words"):
        _explain(qwen, img, text=" ... ")
    with pytest.raises(ExplainError, match="empty"):
        ExplainRequest(AskRequest("q"), answer="   ")
    with pytest.raises(ExplainError, match="unknown explanation method"):
        ExplainRequest(AskRequest("q"), method="lime")
    with pytest.raises(ExplainError, match="'idefics3'.*visual-token layout is not known"):
        layout_for("idefics3")
    with pytest.raises(RequestError, match="outside the scene"):
        explain_scene(qwen, session, ExplainRequest(AskRequest("q", source="region", rect=(900, 900, 50, 50)),
                                                    answer="ship"))


def test_a_served_model_says_it_gives_no_gradients(session):
    served = open_backend("sarlang-qwen", endpoint="http://127.0.0.1:9/v1")
    reason = explanation_unavailable(served)
    assert reason and "served model" in reason and "no gradients" in reason
    with pytest.raises(ExplainError, match="served model"):
        explain_scene(served, session, ExplainRequest(AskRequest("q"), answer="ship"))
    assert explanation_unavailable(None) == "load a model first"


def test_a_cancelled_computation_changes_nothing(qwen, session):
    cancel = CancelToken()
    seen = []

    def progress(p):
        seen.append(p.stage)
        if p.stage == "words":
            cancel.cancel()

    with pytest.raises(CancelledError):
        explain_scene(qwen, session, ExplainRequest(AskRequest("q", max_pixels=112 * 112), answer=ANSWER),
                      progress=progress, cancel=cancel)
    assert "forward" in seen
    assert not layout_for("qwen2_5_vl").module(hf_model(qwen.model))._forward_hooks


def test_out_of_gpu_memory_says_what_to_change_and_releases_the_hooks(qwen):
    import torch

    def exhausted(*_args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    lm = hf_model(qwen.model).model.language_model
    handle = lm.register_forward_pre_hook(exhausted)   # the GPU runs out inside the forward pass
    try:
        with pytest.raises(ExplainError, match="out of GPU memory.*smaller pixel budget"):
            _explain(qwen, sar_image(112, 112))
    finally:
        handle.remove()
    assert not layout_for("qwen2_5_vl").module(hf_model(qwen.model))._forward_hooks
    assert _explain(qwen, sar_image(112, 112)).words      # and the model works afterwards


def test_a_map_of_a_scene_placed_by_control_points_keeps_them(tmp_path):
    from sarlang_core.explain.maps import write_map_geotiff
    from sarlang_core.io import open_scene

    from .conftest import write_gcp_scene

    path = tmp_path / "gcps.tif"
    gcps = write_gcp_scene(path)
    scores = np.zeros((4, 4), np.float32)
    scores[1, 2] = 1.0
    with open_scene(path) as scene:
        out = write_map_geotiff(tmp_path / "map.tif", Placement(4, 4, (20.0, 20.0, 76.0, 76.0)), scores, scene)
        with rasterio.open(out) as ds:
            got, crs = ds.gcps
            assert len(got) == 4 and crs == scene.gcps_crs
            assert [(g.row, g.col, g.x, g.y) for g in got] == [(g.row, g.col, g.x, g.y) for g in gcps]   # 1:1 here
            band = ds.read(1)
            assert band[10, 10] == NODATA and band[20:76, 20:76].min() >= 0
            r, c = np.unravel_index(band.argmax(), band.shape)      # at the cell (1, 2)'s centre, (x 55, y 41)
            assert abs(r + 0.5 - 41) <= 1 and abs(c + 0.5 - 55) <= 1


def test_a_downsampled_scene_raster_samples_where_its_transform_puts_the_pixels():
    from sarlang_core.explain.maps import scene_raster

    # 5000 x 3001 px -> 2048 x 1230: along the short side the transform's pixels are 3001 / 1230 px
    # apart, not the long side's 5000 / 2048; sampled at the latter, the last row fell off the scene
    p = Placement(2, 1, (0.0, 0.0, 5000.0, 3001.0))
    raster = scene_raster(p, np.array([[0.0], [1.0]], np.float32), 5000, 3001)
    h, w = raster.shape
    assert (h, w) == (1230, 2048)
    assert (raster != NODATA).all()
    sy = 3001 / h
    y = (h - 1 + 0.5) * sy
    assert raster[h - 1, 0] == pytest.approx(float(np.clip(y / 1500.5 - 0.5, 0, 1)), abs=1e-5)
