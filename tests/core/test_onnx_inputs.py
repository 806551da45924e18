"""The numpy inputs of the ONNX backend (onnx_inputs) against what transformers computes: the
processor's pixel patches, grid, prompt text and token ids, the vision tower's positions and
windows, and the model's M-RoPE positions, for images of several sizes."""

import numpy as np
import pytest
import torch

from sarlang_core.vlm.backend import ChatTurn
from sarlang_core.vlm.onnx_backend import OnnxBackend
from sarlang_core.vlm.onnx_inputs import ImageSettings, image_patches, mrope_positions, render_prompt, vision_layout

SIZES = [(84, 112), (448, 448), (300, 517), (1000, 60), (1500, 1900)]


@pytest.fixture(scope="module")
def torch_side(tiny_qwen):
    from sarlang_core.vlm.local import LocalBackend

    b = LocalBackend(tiny_qwen)
    b.load()
    return b


@pytest.fixture(scope="module")
def onnx_side(tiny_qwen_onnx):
    b = OnnxBackend(tiny_qwen_onnx, device="cpu")
    b.load()
    return b


@pytest.mark.parametrize("size", SIZES)
def test_pixels_grid_and_token_ids_equal_the_processor(torch_side, onnx_side, size):
    image = (np.random.default_rng(size[1]).random((*size, 3)) * 255).astype(np.uint8)
    turns = [ChatTurn("user", "Is there a ship? Answer yes or no.")]
    ref = torch_side.prepare_inputs(image, turns)
    prompt = onnx_side.prepare(image, turns)
    assert tuple(ref["image_grid_thw"][0].tolist()) == (1, *prompt.grid)
    np.testing.assert_allclose(prompt.pixels, ref["pixel_values"].numpy(), atol=2e-6)
    assert prompt.input_ids.tolist() == ref["input_ids"].tolist()
    assert prompt.token_types.tolist() == ref["mm_token_type_ids"].tolist()


def test_the_chat_template_renders_as_transformers_does(torch_side, onnx_side):
    turns = [ChatTurn("user", "Où est le navire ?"), ChatTurn("assistant", "Près du quai."),
             ChatTurn("user", "Combien ?")]
    msgs = onnx_side._messages(object(), turns)
    assert render_prompt(onnx_side._template, msgs) == torch_side.prompt_text(object(), turns)


@pytest.mark.parametrize("grid", [(4, 4), (6, 8), (16, 16), (36, 20), (2, 72)])
def test_vision_positions_and_windows_equal_the_tower(grid):
    from transformers.vision_utils import get_vision_position_ids, get_vision_window_index

    thw = torch.tensor([[1, *grid]])
    lay = vision_layout(*grid, merge=2, window_size=112, patch_size=14)
    assert lay.position_ids.tolist() == get_vision_position_ids(thw, 2).tolist()
    index, cu = get_vision_window_index(thw, spatial_merge_size=2, window_size=112, patch_size=14)
    assert lay.window_index.tolist() == index.tolist()
    bounds = np.flatnonzero(np.diff(lay.window_ids)) + 1
    assert [0, *bounds.tolist(), len(lay.window_ids)] == cu.tolist()


@pytest.mark.parametrize("size", [(84, 112), (600, 300)])
def test_mrope_positions_equal_the_models(torch_side, size):
    image = (np.random.default_rng(1).random((*size, 3)) * 255).astype(np.uint8)
    ref = torch_side.prepare_inputs(image, [ChatTurn("user", "Describe it.")])
    model = torch_side.model.model
    want, delta = model.get_rope_index(ref["input_ids"], ref["mm_token_type_ids"], ref["image_grid_thw"])
    grid = tuple(ref["image_grid_thw"][0, 1:].tolist())
    got, d = mrope_positions(ref["input_ids"].numpy(), model.config.image_token_id, grid, 2)
    assert got.tolist() == want.tolist() and d == int(delta)


def test_settings_read_both_config_layouts():
    hub = ImageSettings.from_config({"min_pixels": 3136, "max_pixels": 1003520, "image_mean": [0.5] * 3,
                                     "image_std": [0.5] * 3})
    saved = ImageSettings.from_config({"size": {"shortest_edge": 3136, "longest_edge": 1003520},
                                       "image_mean": [0.5] * 3, "image_std": [0.5] * 3})
    assert hub == saved and hub.resized(1000, 1000) == (980, 980)
    pixels, grid = image_patches(np.zeros((56, 84), dtype=np.uint8), hub)
    assert grid == (4, 6) and pixels.shape == (24, 3 * 2 * 14 * 14)
