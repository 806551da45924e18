"""The torch filters compiled by torch.compile (fused GPU kernels): the same numbers as eager, any
tile size, and a compiler that fails costs speed, never a result.

On the CPU the "eager" compile backend traces the filters exactly as inductor would receive them
(a graph break or an untraceable call fails here) without generating code; with CUDA the last test
compiles for real with inductor and compares on the GPU."""

import numpy as np
import pytest
import torch

from sarlang_core.preprocess.filters import torch_backend, torch_fused
from sarlang_core.preprocess.filters.torch_backend import refined_lee_tensor


def _crop(h=90, w=110, seed=0):
    """A speckled crop with a ramp, nodata at a border and a NaN hole inside."""
    rng = np.random.default_rng(seed)
    band = (rng.gamma(1.0, 1.0, (h, w)) * np.linspace(0.05, 3.0, w)).astype(np.float32)
    band[:7, :13] = -9999.0
    band[40:43, 50:52] = np.nan
    return band


@pytest.fixture()
def compiling(monkeypatch):
    monkeypatch.setattr(torch_fused, "_note", "")
    monkeypatch.setenv(torch_fused.ENV_COMPILE, "1")
    monkeypatch.setenv(torch_fused.ENV_BACKEND, "eager")


def _eager(monkeypatch, name, band, **kw):
    monkeypatch.setenv(torch_fused.ENV_COMPILE, "0")
    try:
        return torch_backend.apply(name, band, nodata=-9999.0, device="cpu", **kw)
    finally:
        monkeypatch.setenv(torch_fused.ENV_COMPILE, "1")


@pytest.mark.parametrize("name,kw", [("refined-lee", {}), ("frost", {"window": 5, "damping": 2.0})])
def test_traced_filters_give_the_eager_numbers(compiling, monkeypatch, name, kw):
    for band in (_crop(), _crop(61, 47, 1)):        # a second tile size: no new trace failures
        want = _eager(monkeypatch, name, band, **kw)
        got = torch_backend.apply(name, band, nodata=-9999.0, device="cpu", **kw)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_array_equal(got, want)
        assert got[0, 0] == -9999.0 and not np.array_equal(got, band)
    assert torch_fused.fused_note() == ""


def test_a_compiler_that_fails_falls_back_to_eager_and_says_why(compiling, monkeypatch):
    from torch._dynamo import register_backend

    @register_backend(name="sarlang_test_broken")
    def broken(gm, example_inputs):
        raise RuntimeError("Cannot find a working triton installation")

    monkeypatch.setenv(torch_fused.ENV_BACKEND, "sarlang_test_broken")
    band = _crop()
    want = _eager(monkeypatch, "refined-lee", band)
    got = torch_backend.apply("refined-lee", band, nodata=-9999.0, device="cpu")
    np.testing.assert_array_equal(got, want)
    assert "compiling the GPU filters failed" in torch_fused.fused_note()
    assert "triton" in torch_fused.fused_note()
    assert torch_fused.fused(refined_lee_tensor, "cuda:0") is refined_lee_tensor    # eager from now on
    from sarlang_core.services.scene_session import filter_device_note

    assert filter_device_note().startswith("GPU filters run unfused, slower: compiling the GPU filters failed")


def test_an_unknown_compile_backend_is_a_fallback_too(compiling, monkeypatch):
    monkeypatch.setenv(torch_fused.ENV_BACKEND, "no-such-compiler")
    assert torch_fused.fused(refined_lee_tensor, "cuda:0") is refined_lee_tensor
    assert "InvalidBackend" in torch_fused.fused_note()


def test_compiled_only_on_the_gpu_unless_asked(monkeypatch):
    monkeypatch.setattr(torch_fused, "_note", "")
    monkeypatch.delenv(torch_fused.ENV_COMPILE, raising=False)
    assert torch_fused.fused(refined_lee_tensor, torch.device("cpu")) is refined_lee_tensor
    assert torch_fused.fused(refined_lee_tensor, "cuda:0") is not refined_lee_tensor
    monkeypatch.setenv(torch_fused.ENV_COMPILE, "0")
    assert torch_fused.fused(refined_lee_tensor, "cuda:0") is refined_lee_tensor


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_inductor_on_the_gpu_gives_the_eager_numbers(monkeypatch):
    monkeypatch.setattr(torch_fused, "_note", "")
    monkeypatch.delenv(torch_fused.ENV_BACKEND, raising=False)
    band = _crop(300, 260)
    monkeypatch.setenv(torch_fused.ENV_COMPILE, "0")
    want = torch_backend.apply("refined-lee", band, nodata=-9999.0, device="cuda")
    monkeypatch.setenv(torch_fused.ENV_COMPILE, "auto")
    got = torch_backend.apply("refined-lee", band, nodata=-9999.0, device="cuda")
    assert torch_fused.fused_note() == ""
    valid = ~np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), ~valid)
    np.testing.assert_allclose(got[valid], want[valid], rtol=1e-5)
