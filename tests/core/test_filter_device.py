"""The filter device policy: what "auto", "cpu", "cuda" and "torch-cpu" run, how
SARLANG_FILTER_DEVICE overrides "auto", and that every path gives the numba result."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess import filters as F
from sarlang_core.preprocess.filters.cuda import CUDA_WINS_BELOW_CORES, ENV_DEVICE, choose_device, resolve_device

HAS_CUDA = F.cuda_available()
SMALL_CPU = (os.cpu_count() or 1) < CUDA_WINS_BELOW_CORES
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU")
KW = dict(window=5, looks=2.0, damping=1.5, nodata=-9999.0)


def scene(dtype=np.float64):
    rng = np.random.default_rng(4)
    img = rng.gamma(1.0, 1.0, (70, 61)) * np.where(np.arange(61) < 30, 1.0, 5.0)
    img[5:9, 10:14] = -9999.0
    img[30, 30] = np.nan
    return img.astype(dtype)


FEW, MANY = CUDA_WINS_BELOW_CORES - 1, CUDA_WINS_BELOW_CORES


@pytest.mark.parametrize("device, torch_path, cuda_ok, cores, forced, want", [
    ("cpu", True, True, FEW, "cuda", "numba"),        # "cpu" is numba whatever the rest says
    ("auto", True, True, FEW, "", "cuda"),            # a small CPU: the GPU wins
    ("auto", True, True, MANY, "", "numba"),          # many cores: numba wins (BENCHMARKS.md)
    ("auto", True, True, MANY, "cuda", "cuda"),       # forced, whatever the core count
    ("auto", True, True, FEW, "CPU", "numba"),        # forced off (any case)
    ("auto", True, True, FEW, "numba", "numba"),
    ("auto", True, False, FEW, "cuda", "numba"),      # cannot force a GPU that is not there
    ("auto", False, True, FEW, "cuda", "numba"),      # no torch path (median, none)
    ("cuda", True, True, MANY, "cpu", "cuda"),        # an explicit device beats the variable
    ("cuda", False, True, MANY, "", "numba"),         # median on "cuda" runs numba
    ("torch-cpu", True, False, MANY, "", "torch-cpu"),
    ("torch-cpu", False, False, MANY, "", "numba"),
])
def test_choose_device(device, torch_path, cuda_ok, cores, forced, want):
    assert choose_device(device, torch_path, cuda_ok=cuda_ok, cores=cores, forced=forced) == want


@pytest.mark.parametrize("torch_path", [True, False])
def test_cuda_without_a_gpu_is_a_clear_error(torch_path):
    with pytest.raises(PipelineError, match="no CUDA GPU.*'auto' or 'cpu'"):
        choose_device("cuda", torch_path, cuda_ok=False, cores=4)
    with pytest.raises(PipelineError, match="unknown device 'gpu'"):
        choose_device("gpu", torch_path, cuda_ok=True, cores=4)


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA GPU is present")
@pytest.mark.parametrize("name", ["refined-lee", "median", "none"])
def test_asking_this_machine_for_cuda_raises(name):
    with pytest.raises(PipelineError, match="no CUDA GPU"):
        F.apply_filter(name, scene(), device="cuda")


def test_the_variable_steers_auto_on_this_machine(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert resolve_device("auto", True) == "numba" and not F.prefer_cuda()
    monkeypatch.setenv(ENV_DEVICE, "cuda")
    assert resolve_device("auto", True) == ("cuda" if HAS_CUDA else "numba")
    assert resolve_device("auto", False) == "numba"
    monkeypatch.delenv(ENV_DEVICE)
    assert resolve_device("auto", True) == ("cuda" if HAS_CUDA and SMALL_CPU else "numba")
    assert F.prefer_cuda() is (HAS_CUDA and SMALL_CPU)


@pytest.mark.parametrize("name", F.FILTERS)
def test_auto_gives_what_its_device_gives(name, monkeypatch):
    img = scene(np.float32)
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    np.testing.assert_array_equal(F.apply_filter(name, img, **KW), F.apply_filter(name, img, device="cpu", **KW))
    monkeypatch.delenv(ENV_DEVICE)
    where = resolve_device("auto", F.REGISTRY[name].torch)
    want = F.apply_filter(name, img, device="cpu" if where == "numba" else where, **KW)
    np.testing.assert_array_equal(F.apply_filter(name, img, **KW), want)


@pytest.mark.parametrize("name", F.FILTERS)
def test_torch_cpu_equals_numba(name):
    pytest.importorskip("torch")
    img = scene()
    got = F.apply_filter(name, img, device="torch-cpu", **KW)
    want = F.apply_filter(name, img, device="cpu", **KW)
    assert got.dtype == np.float64
    if F.REGISTRY[name].torch:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    else:  # no torch path: the very numba result
        np.testing.assert_array_equal(got, want)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", F.TORCH_FILTERS)
def test_cuda_equals_numba(name):
    img = scene()
    np.testing.assert_allclose(F.apply_filter(name, img, device="cuda", **KW),
                               F.apply_filter(name, img, device="cpu", **KW), rtol=1e-9, atol=1e-12)


@pytest.mark.cuda
@needs_cuda
def test_forcing_cuda_makes_auto_run_on_the_gpu(monkeypatch):
    img = scene(np.float32)
    monkeypatch.setenv(ENV_DEVICE, "cuda")
    np.testing.assert_array_equal(F.apply_filter("refined-lee", img), F.apply_filter("refined-lee", img, device="cuda"))
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    np.testing.assert_array_equal(F.apply_filter("refined-lee", img), F.apply_filter("refined-lee", img, device="cpu"))
