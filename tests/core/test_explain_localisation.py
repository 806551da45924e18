"""Do the maps mean something? A tiny Qwen2.5-VL fine-tuned (with the product's LoRA engine) on
synthetic sea scenes where a bright ship sits at a random place, or no ship at all, answers "ship"
or "sea"; on held-out scenes the Grad-CAM peak of the word "ship" must fall on the ship (pointing
game), a random map only as often as the ship's share of the grid, and re-initialising the top
language-model layer must change the maps (Adebayo et al., 2018).

"sea" scenes are in the training set so that "ship" needs evidence: with ship-or-oil-slick scenes
the model learns "ship unless a dark slick" and its "ship" maps rightly point anywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy.stats import spearmanr

from sarlang_core.explain import explain_answer
from sarlang_core.explain.maps import Placement
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.local import LocalBackend

SIZE, SHIP = 168, 32          # 6 x 6 visual tokens of 28 px; the ship covers 2-3 tokens a side
QUESTION = "What is the object in the image?"
TURNS = [ChatTurn("user", QUESTION)]


def write_scene(path, rng, ship: bool):
    """Sea clutter (16-look gamma speckle) with, when ``ship``, a saturated ship; returns its box (x, y, w, h)."""
    sea = rng.gamma(16.0, 1 / 16.0, (SIZE, SIZE)) * 110
    x, y = (int(v) for v in rng.integers(0, SIZE - SHIP, 2))
    if ship:
        sea[y:y + SHIP, x:x + SHIP] = 255.0
    Image.fromarray(np.clip(sea, 0, 255).astype(np.uint8)).save(path)
    return (x, y, SHIP, SHIP) if ship else None


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from sarlang_core.train.config import TrainConfig
    from sarlang_core.train.engine import train
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    root = tmp_path_factory.mktemp("localise")
    model = build_tiny_qwen2_5_vl(root / "tiny-qwen", logit_scale=8.0)
    (root / "img").mkdir()
    rng, records = np.random.default_rng(0), []
    for i in range(64):
        answer = ("ship", "sea")[i % 2]
        write_scene(root / "img" / f"{i}.png", rng, answer == "ship")
        records.append({"messages": [{"role": "user", "content": "<image>" + QUESTION},
                                     {"role": "assistant", "content": answer}], "images": [f"img/{i}.png"]})
    (root / "toy.json").write_text(json.dumps(records))
    config = TrainConfig(model=str(model), dataset=str(root / "toy.json"), max_steps=150, batch_size=4, grad_accum=1,
                         learning_rate=3e-3, lora_r=16, lora_alpha=32, save_every=10_000)
    # Trained and explained on the chips as stored (no Pipeline): a per-image percentile stretch
    # would tell ship scenes from sea scenes by their histograms alone, and the model would not
    # need to look at the ship.
    train(root / "run", config, None)
    held_out, rng = [], np.random.default_rng(99)
    for i in range(30):
        path = root / f"test{i}.png"
        held_out.append((path, write_scene(path, rng, True)))
    backend = LocalBackend(model, root / "run" / "adapter", device="cpu")
    backend.load()
    yield backend, held_out
    backend.unload()


class Result:
    """A word's map placed on its chip, as services.explain places maps on a scene."""

    def __init__(self, explanation, size):
        self.explanation, self.words = explanation, explanation.words
        self.placement = Placement.of(explanation.grid, explanation.covered, size, (0.0, 0.0, *map(float, size)))


def _maps(backend, held_out, method="gradcam"):
    out = []
    for path, box in held_out:
        image = Image.open(path).convert("RGB")
        inputs = backend.prepare_inputs(image, TURNS)
        ids = backend.processor.tokenizer("ship", add_special_tokens=False)["input_ids"]
        e = explain_answer(backend.model, backend.processor, backend.family, inputs, ids, image_size=image.size,
                           method_name=method)
        out.append((Result(e, image.size), box))
    return out


def _cell_hits(r, box) -> np.ndarray:
    """Which cells of the map's grid overlap the ship (scene pixels)."""
    rows, cols = r.explanation.grid
    cw, ch = r.placement.cell
    x0, y0 = r.placement.rect[:2]
    bx, by, bw, bh = box
    xs, ys = x0 + np.arange(cols) * cw, y0 + np.arange(rows) * ch
    return ((ys < by + bh) & (ys + ch > by))[:, None] & ((xs < bx + bw) & (xs + cw > bx))[None, :]


def _pointing(results, pick) -> float:
    return float(np.mean([_cell_hits(r, box)[pick(r)] for r, box in results]))


def test_the_trained_model_names_the_ship(trained):
    backend, held_out = trained
    answers = [backend.answer(Image.open(path).convert("RGB"), TURNS, GenerationConfig(max_new_tokens=4)).strip()
               for path, _box in held_out[:10]]
    assert answers.count("ship") >= 8, answers


def test_pointing_game_gradcam_finds_the_ship_and_a_random_map_does_not(trained):
    backend, held_out = trained
    results = _maps(backend, held_out)
    gradcam = _pointing(results, lambda r: r.words[0].peak_cell)
    rng = np.random.default_rng(1)
    random_map = _pointing(results * 20, lambda r: np.unravel_index(rng.integers(r.words[0].scores.size),
                                                                       r.words[0].scores.shape))
    share = float(np.mean([_cell_hits(r, box).mean() for r, box in results]))   # the ship's share of the cells
    assert abs(random_map - share) < 0.05 and share < 0.2, (random_map, share)
    # 1.00 with the package set of 2026-12-07 18:00; 0.53 with that of 21:00 (same torch, same seeds;
    # transformers 5.24/5.25 and peft 0.21/0.22 both gave 0.53); 1.00 again in the fresh install of
    # 2026-12-08 (torch 2.13.0, transformers 5.25.0, peft 0.22.0, tokenizers 0.23.3), this file
    # run alone. The toy's Grad-CAM is sensitive to the install (the tiny tokenizer is trained at
    # test time), attention stays at 1.00. The claim kept: far above a random map.
    assert gradcam >= max(0.5, 3 * share), (gradcam, share)


def test_attention_to_the_image_also_points_at_the_ship(trained):
    backend, held_out = trained
    assert _pointing(_maps(backend, held_out[:15], "attention"), lambda r: r.words[0].peak_cell) >= 0.8


def test_maps_depend_on_the_top_layer_weights(trained):
    """Cascading randomisation from the top: the output layer and the last decoder block re-drawn."""
    import torch

    backend, held_out = trained
    before = [r.words[0].scores.ravel() for r, _ in _maps(backend, held_out[:10])]
    hf = backend.model.get_base_model()
    top = [hf.lm_head, hf.model.language_model.layers[-1]]
    saved = [{k: v.clone() for k, v in m.state_dict().items()} for m in top]
    gen = torch.Generator().manual_seed(0)
    try:
        with torch.no_grad():
            for module in top:
                for p in module.parameters():
                    if p.dim() > 1:
                        p.copy_(torch.randn(p.shape, generator=gen) * 0.02 * (8.0 if module is hf.lm_head else 1.0))
        after = [r.words[0].scores.ravel() for r, _ in _maps(backend, held_out[:10])]
    finally:
        for module, state in zip(top, saved):
            module.load_state_dict(state)
    rho = np.nanmean([spearmanr(a, b).statistic for a, b in zip(before, after)])
    assert rho < 0.5, rho
    restored = [r.words[0].scores.ravel() for r, _ in _maps(backend, held_out[:10])]
    np.testing.assert_allclose(np.stack(restored), np.stack(before), atol=1e-5)
