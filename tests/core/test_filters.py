"""Classic speckle filters against brute-force references, laws they obey, the public API's
checks and dispatch, and tiled == whole-image filtering for every filter."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess import filters as F
from sarlang_core.preprocess.filters import (
    FILTERS,
    apply_filter,
    boxcar,
    filter_halo,
    frost,
    gamma_map,
    lee,
    median,
    refined_lee,
)


def small_image(seed=0, h=23, w=19):
    """Speckle over two levels with nodata (-1), NaN and Inf, float64."""
    rng = np.random.default_rng(seed)
    img = rng.gamma(1.0, 1.0, (h, w)) * np.where(np.arange(w) < w // 2, 1.0, 7.0)
    img[3, 4] = img[10, 0] = img[15:17, 8:10] = -1.0
    img[7, 12] = np.nan
    img[0, 18] = np.inf
    return img


def windows_of(img, window, nodata=-1.0):
    """Per valid pixel: (y, x, centre, valid values of the window, their distances)."""
    r = window // 2
    h, w = img.shape
    valid = np.isfinite(img) & (img != nodata)
    for y in range(h):
        for x in range(w):
            if not valid[y, x]:
                continue
            ys, xs = np.mgrid[max(y - r, 0) : min(y + r + 1, h), max(x - r, 0) : min(x + r + 1, w)]
            keep = valid[ys, xs]
            yield y, x, img[y, x], img[ys, xs][keep], np.hypot(ys - y, xs - x)[keep]


def brute(img, window, rule, nodata=-1.0):
    out = img.copy()
    for y, x, c, vals, dist in windows_of(img, window, nodata):
        out[y, x] = rule(c, vals, dist)
    return out


def stats(vals):
    m = vals.mean()
    v = vals.var(ddof=1) if vals.size > 1 else 0.0
    return m, v


def lee_rule(looks):
    def rule(c, vals, dist):
        m, v = stats(vals)
        if v <= 0:
            return m
        s = 1.0 / looks
        return m + max(0.0, (v - m * m * s) / (1 + s)) / v * (c - m)
    return rule


def gamma_rule(looks):
    def rule(c, vals, dist):
        m, v = stats(vals)
        if m <= 0:
            return m
        ci2, cu2 = v / m**2, 1.0 / looks
        if ci2 <= cu2:
            return m
        if ci2 >= 2 * cu2:
            return c
        alpha = (1 + cu2) / (ci2 - cu2)
        b = alpha - looks - 1
        return (b * m + np.sqrt(max(0.0, m * m * b * b + 4 * alpha * looks * m * c))) / (2 * alpha)
    return rule


def frost_rule(damping):
    def rule(c, vals, dist):
        m, v = stats(vals)
        k = np.exp(-(damping * v / m**2 if m > 0 else 0.0) * dist)
        return np.sum(k * vals) / np.sum(k)
    return rule


# ----------------------------------------------------------------------------- references
@pytest.mark.parametrize("window", [3, 5, 7, 9])
def test_against_brute_force(window):
    img = small_image(window)
    cases = [
        (boxcar(img, window=window, nodata=-1), lambda c, v, d: v.mean()),
        (median(img, window=window, nodata=-1), lambda c, v, d: np.median(v)),
        (lee(img, window=window, looks=2.0, nodata=-1), lee_rule(2.0)),
        (gamma_map(img, window=window, looks=3.0, nodata=-1), gamma_rule(3.0)),
        (frost(img, window=window, damping=1.5, nodata=-1), frost_rule(1.5)),
    ]
    for got, rule in cases:
        assert got.dtype == np.float64 and got.shape == img.shape
        np.testing.assert_allclose(got, brute(img, window, rule), rtol=1e-9, atol=1e-12)


def test_median_networks_select_the_median():
    from sarlang_core.preprocess.filters import classic
    rng = np.random.default_rng(0)
    for window in (3, 5, 7):
        net_a, net_b, size = classic.median_network(window)
        n = window * window
        vals = np.full((size, 4000), np.inf)
        vals[:n] = rng.integers(0, 6, (n, 4000))  # many ties
        if window == 3:  # and every 0-1 input (the 0-1 principle makes this a proof)
            vals = np.full((size, 512), np.inf)
            vals[:n] = (np.arange(512) >> np.arange(9)[:, None]) & 1
        want = np.sort(vals[:n], axis=0)[n // 2]
        for a, b in zip(net_a, net_b):
            vals[a], vals[b] = np.minimum(vals[a], vals[b]), np.maximum(vals[a], vals[b])
        np.testing.assert_array_equal(vals[n // 2], want)


def test_median_even_counts_and_ties():
    img = np.array([[1.0, 2.0, 2.0, 9.0], [4.0, np.nan, 2.0, 3.0], [5.0, 5.0, 5.0, 1.0]])
    want = brute(img, 3, lambda c, v, d: np.median(v), nodata=None)
    np.testing.assert_array_equal(median(img, window=3), want)


# ----------------------------------------------------------------------------- laws
def speckle(seed=1, shape=(64, 60)):
    rng = np.random.default_rng(seed)
    return rng.gamma(1.0, 1.0, shape) * np.where(np.arange(shape[1]) < shape[1] // 2, 1.0, 5.0)


def test_constant_image_is_a_fixed_point():
    img = np.full((17, 18), 0.3)
    for name in FILTERS:
        np.testing.assert_allclose(apply_filter(name, img, device="cpu"), img, rtol=1e-12)


def test_lee_limits_and_convexity():
    img = speckle()
    box = boxcar(img, window=5)
    np.testing.assert_array_equal(lee(img, window=5, looks=1e-9), box)  # all noise: the mean
    np.testing.assert_allclose(lee(img, window=5, looks=1e12), img, rtol=1e-6)  # no noise: identity
    out = lee(img, window=5, looks=1.0)
    assert np.all(np.abs(out - box) <= np.abs(img - box) + 1e-12)  # between mean and pixel
    assert np.any(out != box) and np.any(out != img)


def test_gamma_map_limits_and_range():
    img = speckle(2)
    np.testing.assert_array_equal(gamma_map(img, window=5, looks=1e-9), boxcar(img, window=5))
    np.testing.assert_array_equal(gamma_map(img, window=5, looks=1e9), img)  # every Ci >= Cmax
    out = gamma_map(img, window=5, looks=1.0)
    assert np.all(out > 0) and np.all(np.isfinite(out))


def test_frost_limits():
    img = speckle(3)
    np.testing.assert_allclose(frost(img, window=5, damping=0.0), boxcar(img, window=5), rtol=1e-12)
    np.testing.assert_allclose(frost(img, window=5, damping=1e6), img, rtol=1e-9)


def test_filters_reduce_speckle_and_keep_the_mean():
    img = np.random.default_rng(4).gamma(1.0, 1.0, (128, 128))
    for name in ("boxcar", "lee", "refined-lee", "frost", "gamma-map"):
        out = apply_filter(name, img, device="cpu")
        assert out.var() < 0.6 * img.var(), name
        assert abs(out.mean() / img.mean() - 1) < 0.06, name


# ----------------------------------------------------------------------------- API
@pytest.mark.parametrize("name", FILTERS)
def test_dtypes_shapes_and_pass_through(name):
    img = small_image(5)
    before = img.copy()
    for band, dtype in ((img, np.float64), (img.astype(np.float32), np.float32)):
        out = apply_filter(name, band, nodata=-1.0, device="cpu")
        assert out.dtype == dtype and out.shape == img.shape and out is not band
        assert np.isnan(out[7, 12]) and out[0, 18] == np.inf and out[3, 4] == -1.0
    np.testing.assert_array_equal(img, before)
    ints = np.arange(12 * 11, dtype=np.int16).reshape(12, 11)
    out = apply_filter(name, ints, nodata=5, device="cpu")
    assert out.dtype == np.float32 and out.ravel()[5] == 5.0


def test_none_is_a_float_copy():
    img = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = apply_filter("none", img)
    assert out is not img and out.dtype == np.float32
    np.testing.assert_array_equal(out, img)
    assert apply_filter("none", img.astype(np.float64)).dtype == np.float64


@pytest.mark.parametrize("call, message", [
    (lambda: boxcar(np.ones((5, 5)), window=4), "odd"),
    (lambda: median(np.ones((5, 5)), window=1), "odd"),
    (lambda: lee(np.ones((5, 5)), window=5.0), "odd"),
    (lambda: boxcar(np.ones((5, 5)), window=True), "odd"),
    (lambda: lee(np.ones((5, 5)), looks=0), "looks"),
    (lambda: gamma_map(np.ones((5, 5)), looks=float("nan")), "looks"),
    (lambda: frost(np.ones((5, 5)), damping=-1), "damping"),
    (lambda: refined_lee(np.ones(5)), "2-D"),
    (lambda: boxcar(np.ones((2, 5, 5))), "2-D"),
    (lambda: refined_lee(np.ones((5, 5), complex)), "complex"),
    (lambda: apply_filter("sigma-lee", np.ones((5, 5))), "unknown filter"),
    (lambda: apply_filter("lee", np.ones((5, 5)), device="tpu"), "unknown device"),
    (lambda: filter_halo("nope"), "unknown filter"),
    (lambda: filter_halo("median", 6), "odd"),
])
def test_bad_parameters_raise_pipeline_error(call, message):
    with pytest.raises(PipelineError, match=message):
        call()


def test_cuda_request_without_cuda_is_an_error():
    if F.cuda_available():
        pytest.skip("a CUDA GPU is present")
    with pytest.raises(PipelineError, match="CUDA"):
        apply_filter("boxcar", np.ones((5, 5)), device="cuda")


def test_filter_halo():
    assert filter_halo("none") == 0
    assert filter_halo("refined-lee", window=9) == 3
    assert filter_halo("boxcar", window=7) == 3 and filter_halo("median") == 2


def test_empty_and_tiny_images():
    for name in FILTERS:
        assert apply_filter(name, np.ones((0, 4), np.float32), device="cpu").shape == (0, 4)
        np.testing.assert_array_equal(apply_filter(name, np.full((1, 1), 2.0), device="cpu"), [[2.0]])


@pytest.mark.parametrize("name", ["boxcar", "lee", "gamma-map", "frost"])
def test_torch_cpu_matches_numba(name):
    pytest.importorskip("torch")
    img = small_image(6)
    for window in (3, 5):
        kw = dict(window=window, looks=2.0, damping=1.0, nodata=-1.0)
        got = apply_filter(name, img, device="torch-cpu", **kw)
        np.testing.assert_allclose(got, apply_filter(name, img, device="cpu", **kw), rtol=1e-9, atol=1e-12)


def test_concurrent_calls_from_threads():
    imgs = [speckle(s, (96, 80)).astype(np.float32) for s in range(6)]
    want = [refined_lee(i) for i in imgs]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(refined_lee, imgs))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def _python(code, env):
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_import_changes_no_environment_and_first_use_caches_in_the_user_folder(tmp_path):
    """Importing the package leaves os.environ, numba and threads alone; the first filter call
    compiles into the user's cache folder (not the package folder, which may be read-only)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)  # where platformdirs puts the user cache on Linux
    code = ("import os, sys, threading, numpy as np\n"
            "before = dict(os.environ); threads = threading.active_count()\n"
            "import sarlang_core.preprocess.filters as F\n"
            "print('numba' not in sys.modules, dict(os.environ) == before, threading.active_count() == threads,"
            " not F.POOL.started)\n"
            "F.apply_filter('boxcar', np.ones((9, 9), np.float32), window=3, device='cpu')\n"
            "import numba.core.config as c\n"
            "print(dict(os.environ) == before, c.CACHE_DIR)")
    *checks, path = _python(code, env)
    assert checks == ["True"] * 5
    assert path == str(tmp_path / "sarlang-studio" / "numba")
    assert list((tmp_path / "sarlang-studio" / "numba").rglob("classic*.nbi"))  # the kernel was cached there


def test_a_cache_folder_the_user_chose_is_kept(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    code = "from sarlang_core.preprocess.filters import numba_cache; print(numba_cache.configure())"
    assert _python(code, env) == [str(tmp_path)]


def test_warmup_runs_every_filter():
    F.warmup()


def test_the_pool_starts_lazily_and_resets():
    pool = F.pool.RowPool(threads=2)
    assert not pool.started
    pool.run_rows(lambda lo, hi: None, 16 * 8)
    assert pool.started
    pool.reset()
    assert not pool.started
    pool.shutdown()


# ----------------------------------------------------------------------------- tiling
def scene_300x257():
    rng = np.random.default_rng(21)
    img = (rng.gamma(1.0, 1.0, (300, 257)) * np.where(np.arange(257) < 130, 1.0, 6.0)).astype(np.float32)
    img[40:60, 100:104] = -9999.0
    img[rng.integers(0, 300, 40), rng.integers(0, 257, 40)] = np.nan
    img[150:160, 0:3] = np.nan
    return img


SCENE = scene_300x257()
CASES = [("none", 5, False, "cpu"), ("refined-lee", 5, False, "cpu"), ("refined-lee", 5, True, "cpu"),
         ("boxcar", 3, False, "cpu"), ("boxcar", 7, False, "cpu"), ("median", 5, False, "cpu"),
         ("lee", 5, False, "cpu"), ("frost", 5, False, "cpu"), ("gamma-map", 7, False, "cpu"),
         ("refined-lee", 5, False, "torch-cpu"), ("lee", 5, False, "torch-cpu")]
WHOLE = {}


def tiled(name, img, tile, offset, **kw):
    """What the tiler does: each tile plus its halo (clipped at the image), filtered, cropped."""
    halo = filter_halo(name, kw.get("window", 5))
    h, w = img.shape
    out = np.empty(img.shape, np.float32)
    ys = [0] + list(range(offset[0] or tile[0], h, tile[0]))
    xs = [0] + list(range(offset[1] or tile[1], w, tile[1]))
    for y0, y1 in zip(ys, ys[1:] + [h]):
        for x0, x1 in zip(xs, xs[1:] + [w]):
            ry0, ry1, rx0, rx1 = max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)
            res = apply_filter(name, img[ry0:ry1, rx0:rx1], **kw)
            out[y0:y1, x0:x1] = res[y0 - ry0 : y1 - ry0, x0 - rx0 : x1 - rx0]
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
@settings(max_examples=8, deadline=None)
@given(tile=st.tuples(st.integers(2, 130), st.integers(2, 130)),
       offset=st.tuples(st.integers(0, 60), st.integers(0, 60)))
def test_tiled_equals_whole(case, tile, offset):
    name, window, snap, device = case
    if device == "torch-cpu":
        pytest.importorskip("torch")
    # small tiles (smaller than the halo too) cost many calls: keep the tile count bounded
    least = 96 if device == "torch-cpu" else 10
    tile = (max(tile[0], least), tile[1]) if tile[0] * tile[1] < least * least else tile
    kw = dict(window=window, snap_exact=snap, nodata=-9999.0, device=device, looks=2.0)
    if case not in WHOLE:
        WHOLE[case] = apply_filter(name, SCENE, **kw)
    np.testing.assert_array_equal(tiled(name, SCENE, tile, offset, **kw), WHOLE[case])


def test_registry_entries_point_at_real_functions():
    for name, fdef in F.REGISTRY.items():
        assert callable(fdef.numba_function()), name
        assert set(fdef.param_names) <= {"window", "looks", "damping", "snap_exact"}
    assert F.TORCH_FILTERS == tuple(n for n, f in F.REGISTRY.items() if f.torch)
    torch_backend = pytest.importorskip("sarlang_core.preprocess.filters.torch_backend")
    assert set(torch_backend.TORCH_FUNCTIONS) == set(F.TORCH_FILTERS)
