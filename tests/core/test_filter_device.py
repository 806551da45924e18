"""The filter device policy: what "auto", "cpu", "cuda" and "torch-cpu" run, how
SARLANG_FILTER_DEVICE overrides "auto", and that every path gives the numba result."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from sarlang_core.errors import PipelineError
from sarlang_core.preprocess import filters as F
from sarlang_core.preprocess.filters import device_probe
from sarlang_core.preprocess.filters.cuda import ENV_DEVICE, choose_device, resolve_device

HAS_CUDA = F.cuda_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU")
KW = dict(window=5, looks=2.0, damping=1.5, nodata=-9999.0)


def scene(dtype=np.float64):
    rng = np.random.default_rng(4)
    img = rng.gamma(1.0, 1.0, (70, 61)) * np.where(np.arange(61) < 30, 1.0, 5.0)
    img[5:9, 10:14] = -9999.0
    img[30, 30] = np.nan
    return img.astype(dtype)


FAST, SLOW = True, False      # what the measurement says of CUDA against numba


@pytest.mark.parametrize("device, torch_path, cuda_ok, faster, forced, want", [
    ("cpu", True, True, FAST, "cuda", "numba"),       # "cpu" is numba whatever the rest says
    ("auto", True, True, FAST, "", "cuda"),           # measured faster here: the GPU
    ("auto", True, True, SLOW, "", "numba"),          # measured slower (many cores): numba
    ("auto", True, True, SLOW, "cuda", "cuda"),       # forced, whatever was measured
    ("auto", True, True, FAST, "CPU", "numba"),       # forced off (any case)
    ("auto", True, True, FAST, "numba", "numba"),
    ("auto", True, False, FAST, "cuda", "numba"),     # cannot force a GPU that is not there
    ("auto", False, True, FAST, "cuda", "numba"),     # no torch path (median, none)
    ("cuda", True, True, SLOW, "cpu", "cuda"),        # an explicit device beats the variable
    ("cuda", False, True, SLOW, "", "numba"),         # median on "cuda" runs numba
    ("torch-cpu", True, False, SLOW, "", "torch-cpu"),
    ("torch-cpu", False, False, SLOW, "", "numba"),
])
def test_choose_device(device, torch_path, cuda_ok, faster, forced, want):
    asked = []

    def measured():
        asked.append(1)
        return faster

    assert choose_device(device, torch_path, cuda_ok=cuda_ok, cuda_faster=measured, forced=forced) == want
    # measuring costs a few hundred ms: only "auto" with a GPU, a torch path and nothing forced asks
    assert bool(asked) == (device == "auto" and torch_path and cuda_ok and forced.lower() not in ("cpu", "numba",
                                                                                                   "cuda"))


@pytest.mark.parametrize("torch_path", [True, False])
def test_cuda_without_a_gpu_is_a_clear_error(torch_path):
    with pytest.raises(PipelineError, match="no CUDA GPU.*'auto' or 'cpu'"):
        choose_device("cuda", torch_path, cuda_ok=False)
    with pytest.raises(PipelineError, match="unknown device 'gpu'"):
        choose_device("gpu", torch_path, cuda_ok=True)


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
    if not HAS_CUDA:
        assert resolve_device("auto", True) == "numba" and F.prefer_cuda() is False


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


def test_the_probe_picks_the_faster_and_keeps_its_verdict(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, "_decided", {})
    calls = {"slow": 0, "fast": 0}

    def slow():
        calls["slow"] += 1
        time.sleep(0.02)

    def fast():
        calls["fast"] += 1

    cache = tmp_path / "cache" / "filter_device.json"
    assert device_probe.decide("gpu-x|2 cores", {"slow": slow, "fast": fast}, cache) == "fast"
    assert calls == {"slow": 1 + device_probe.RUNS, "fast": 1 + device_probe.RUNS}   # a warm-up, then timed
    record = json.loads(cache.read_text())["gpu-x|2 cores"]
    assert record["choice"] == "fast" and record["ms"]["slow"] > record["ms"]["fast"]
    device_probe._decided.clear()                  # a new process: the file answers, nothing is timed
    assert device_probe.decide("gpu-x|2 cores", {"slow": slow, "fast": fast}, cache) == "fast"
    assert calls["slow"] == 1 + device_probe.RUNS
    assert device_probe.decide("gpu-y|2 cores", {"slow": slow, "fast": fast}, cache) == "fast"   # a new card
    assert set(json.loads(cache.read_text())) == {"gpu-x|2 cores", "gpu-y|2 cores"}


def test_an_unwritable_cache_only_costs_a_measurement(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, "_decided", {})
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert device_probe.decide("k", {"a": lambda: None}, blocked / "filter_device.json") == "a"


def _speckled_float32(seed):
    from sarlang_core import synthetic as syn

    img = syn.speckle(syn.reflectivity_map(300, 260, seed), 1.0, seed + 1).astype(np.float32)
    img[40:60, 0:30] = -9999.0          # nodata touching the border
    img[150, 200] = np.nan
    return img


@pytest.mark.parametrize("device", ["torch-cpu", pytest.param("cuda", marks=[pytest.mark.cuda, needs_cuda])])
@pytest.mark.parametrize("name", F.TORCH_FILTERS)
def test_float32_torch_paths_match_numba_within_the_papers_tolerances(name, device):
    """float32 results within 1e-4 relative of the numba kernels, and the dB + stretch uint8
    within one grey level, on speckled crops with nodata at the border."""
    pytest.importorskip("torch")
    for seed in (0, 1):
        img = _speckled_float32(seed)
        want = F.apply_filter(name, img, device="cpu", nodata=-9999.0)
        got = F.apply_filter(name, img, device=device, nodata=-9999.0)
        assert got.dtype == np.float32
        ok = np.isfinite(want) & (want != -9999.0)
        np.testing.assert_array_equal(got[~ok], want[~ok])
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4)
        db_w, db_g = (10 * np.log10(np.maximum(a[ok], 1e-10)) for a in (want, got))
        lo, hi = np.percentile(db_w, [2, 98])
        q = [np.clip(np.round((d - lo) / (hi - lo) * 254 + 1), 1, 255).astype(np.uint8) for d in (db_w, db_g)]
        assert np.abs(q[0].astype(int) - q[1].astype(int)).max() <= 1


# -- a GPU that fails mid-work ----------------------------------------------------------------------
@pytest.fixture
def gpu_seen_at_start(monkeypatch):
    """CUDA was there when the process looked (cached), and 'auto' is set on it: torch's CUDA calls
    then fail as they do once a GPU is lost (on this CUDA-less torch they really fail)."""
    from sarlang_core.preprocess.filters import cuda

    monkeypatch.setattr(cuda, "_cuda_ok", True)
    monkeypatch.setattr(cuda, "_lost", "")
    monkeypatch.setenv(ENV_DEVICE, "cuda")
    return cuda


@pytest.mark.skipif(HAS_CUDA, reason="needs a torch whose CUDA calls fail (here they would succeed)")
def test_a_gpu_that_fails_mid_work_falls_back_to_numba_and_says_so(gpu_seen_at_start):
    band = scene(np.float32)
    assert F.device_note() == ""
    out = F.apply_filter("refined-lee", band, nodata=-9999.0)               # "auto": the GPU, which fails
    np.testing.assert_array_equal(out, F.apply_filter("refined-lee", band, nodata=-9999.0, device="cpu"))
    assert "stopped working for preprocessing" in F.device_note()
    assert resolve_device("auto", True) == "numba"                           # no retry on every tile
    with pytest.raises(PipelineError, match="no CUDA GPU"):
        F.apply_filter("lee", band, device="cuda")                           # asked for by name: an error


@pytest.mark.skipif(HAS_CUDA, reason="needs a torch whose CUDA calls fail (here they would succeed)")
def test_the_gpu_failing_when_asked_for_by_name_is_an_error_not_a_silent_cpu_run(gpu_seen_at_start):
    with pytest.raises(PipelineError, match="refined-lee on the GPU failed"):
        F.apply_filter("refined-lee", scene(np.float32), device="cuda")


def test_gpu_out_of_memory_runs_that_tile_on_numba_and_keeps_the_gpu(gpu_seen_at_start, monkeypatch):
    import torch

    from sarlang_core.preprocess.filters import torch_backend

    def full(*_a, **_k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(torch_backend, "apply", full)
    band = scene(np.float32)
    out = F.apply_filter("boxcar", band, window=5, nodata=-9999.0)
    np.testing.assert_array_equal(out, F.apply_filter("boxcar", band, window=5, nodata=-9999.0, device="cpu"))
    assert F.device_note() == "" and resolve_device("auto", True) == "cuda"   # the next tile tries the GPU again


def test_bad_input_is_reported_as_such_on_the_gpu_path(gpu_seen_at_start):
    with pytest.raises(PipelineError):
        F.apply_filter("refined-lee", np.zeros((4, 4, 4), np.float32))       # not 2-D: the input's fault
    assert F.device_note() == ""
