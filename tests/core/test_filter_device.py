"""How "auto" picks the filter device."""

import numpy as np

from sarlang_core.preprocess import filters as F


def test_auto_device_rules(monkeypatch):
    monkeypatch.setattr(F, "_CUDA_OK", False)
    monkeypatch.setenv("SARLANG_FILTER_DEVICE", "cuda")
    assert F.prefer_cuda() is False                  # cannot force a GPU that is not there
    monkeypatch.setattr(F, "_CUDA_OK", True)
    assert F.prefer_cuda() is True                   # forced, whatever the core count
    monkeypatch.setenv("SARLANG_FILTER_DEVICE", "cpu")
    assert F.prefer_cuda() is False
    monkeypatch.delenv("SARLANG_FILTER_DEVICE")
    monkeypatch.setattr(F.os, "cpu_count", lambda: 2)
    assert F.prefer_cuda() is True                   # a small CPU: the GPU wins
    monkeypatch.setattr(F.os, "cpu_count", lambda: 16)
    assert F.prefer_cuda() is False                  # many cores: numba wins (BENCHMARKS.md)


def test_auto_without_cuda_runs_numba_and_matches_cpu():
    band = np.random.default_rng(1).gamma(1.0, 1.0, (64, 64)).astype(np.float32)
    if not F.cuda_available():
        np.testing.assert_array_equal(F.apply_filter("refined-lee", band), F.apply_filter("refined-lee", band, device="cpu"))
