"""Benchmark batch size "auto": measured from what a batch really takes against the free GPU memory.

The model is the tiny Qwen2.5-VL on the CPU; the GPU is simulated at the only seam the sizing
reads (free memory, a batch's peak) with the memory law of a real one: a batch of n samples
padded to its largest image takes fixed + n x per-sample, and running out of memory fails the
batch. Every answer is still the tiny model's own. On a machine with CUDA the last test measures
a real GPU."""

import json

import pytest
import torch

from sarlang_core.errors import OutOfMemoryError
from sarlang_core.evaluate.batch_fit import FILL, BatchFit, parse_batch_size
from sarlang_core.evaluate.dataset_source import Sample
from sarlang_core.evaluate.generation import answer_all
from sarlang_core.evaluate.run_config import BenchmarkError, RunConfig
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.local import LocalBackend

from .vlm_fixtures import sar_image

GIB = 2 ** 30
CONFIG = GenerationConfig(max_new_tokens=3)


@pytest.fixture(scope="module")
def backend(tiny_qwen):
    b = LocalBackend(tiny_qwen, device="cpu")
    b.load()
    return b


class _Gpu:
    """Free memory and a batch's peak, as CudaMemoryMeter reports them, for a simulated card."""

    def __init__(self, free, fixed, per_pixel):
        self.free, self.fixed, self.per_pixel, self.peak = free, fixed, per_pixel, 0

    def cost(self, images) -> float:
        widest = max(im.size[0] * im.size[1] for im in images)     # a batch is padded to its largest
        return self.fixed + len(images) * widest * self.per_pixel

    def free_bytes(self):
        return self.free

    def start(self):
        self.peak = 0

    def peak_bytes(self):
        return self.peak


class _OnGpu(LocalBackend):
    """The tiny model answering as if on ``gpu``: batches over its memory fail as torch's would."""

    def __init__(self, inner, gpu):
        self.__dict__.update(inner.__dict__)
        self.gpu, self.sizes, self.failed = gpu, [], []

    def memory_meter(self):
        return self.gpu

    def generate_batch(self, images, turns_list, config=GenerationConfig(), *, cancel=None):
        cost = self.gpu.cost(images)
        if cost > self.gpu.free:
            self.failed.append(len(images))
            raise OutOfMemoryError("out of GPU memory while answering")
        self.sizes.append(len(images))
        self.gpu.peak = cost
        return super().generate_batch(images, turns_list, config, cancel=cancel)

    def answer(self, image, turns, config=GenerationConfig(), *, cancel=None):
        if self.gpu.cost([image]) > self.gpu.free:
            raise OutOfMemoryError("out of GPU memory while answering")
        self.sizes.append(1)
        return super().answer(image, turns, config, cancel=cancel)


def _samples(sizes):
    return [Sample(f"s{i}", f"/chips/{i}.png", ("How many ships?", "Is there a bridge?")[i % 2], ("x",), "t")
            for i in range(len(sizes))]


def _prepare_for(sizes):
    def prepare(sample):
        i = int(sample.id[1:])
        return sar_image(*sizes[i], i), [ChatTurn("user", sample.question)]
    return prepare


def _one_by_one(backend, samples, prepare):
    return [backend.answer(*prepare(s), CONFIG) for s in samples]


def test_auto_measures_two_batches_then_fills_the_free_memory(backend):
    sizes = [(28, 28)] * 40
    px = 28 * 28
    gpu = _Gpu(free=20 * GIB, fixed=1 * GIB, per_pixel=0.5 * GIB / px)    # 1 GiB per batch + 0.5 GiB a sample
    rec = _OnGpu(backend, gpu)
    fit = BatchFit.for_backend("auto", rec)
    samples, prepare = _samples(sizes), _prepare_for(sizes)
    got = list(answer_all(rec, samples, prepare, CONFIG, batch_size=fit))
    assert [a.id for a in got] == [s.id for s in samples] and all(a.error is None for a in got)
    assert [a.text for a in got] == _one_by_one(backend, samples, prepare)
    # 1, then what fits if 1.5 GiB were all per sample (16 / 1.5 = 10), then (16 - 1) / 0.5 = 30: the
    # rest of the first window of 32 (21) and the 8 after it, prepared while the size was measured
    assert rec.sizes == [1, 10, 21, 8] and fit.n == int((FILL * 20 - 1) / 0.5) == 30
    assert not rec.failed
    assert "auto: 30" in fit.note and "0.50 GiB per sample" in fit.note and "20.00 GiB free" in fit.note


def test_auto_measures_the_costliest_samples_so_mixed_sizes_do_not_run_out(backend):
    # small chips first in the file, large ones later: sized on the small ones, a batch of large ones
    # would not fit; the window is ordered costliest first, so the measurement is on the large ones
    sizes = [(28, 28)] * 20 + [(84, 84)] * 12
    gpu = _Gpu(free=10 * GIB, fixed=0, per_pixel=1.0 * GIB / (84 * 84))    # 1 GiB per large chip
    rec = _OnGpu(backend, gpu)
    fit = BatchFit.for_backend("auto", rec)
    samples, prepare = _samples(sizes), _prepare_for(sizes)
    got = list(answer_all(rec, samples, prepare, CONFIG, batch_size=fit))
    assert [a.id for a in got] == [s.id for s in samples] and all(a.error is None for a in got)
    assert not rec.failed and fit.n == 8          # 0.8 x 10 GiB / 1 GiB
    assert [a.text for a in got] == _one_by_one(backend, samples, prepare)


def test_auto_when_not_even_two_fit_answers_one_at_a_time(backend):
    sizes = [(56, 56)] * 5
    gpu = _Gpu(free=10 * GIB, fixed=2 * GIB, per_pixel=6 * GIB / (56 * 56))   # 8 GiB for one, 14 for two
    rec = _OnGpu(backend, gpu)
    fit = BatchFit.for_backend("auto", rec)
    got = list(answer_all(rec, _samples(sizes), _prepare_for(sizes), CONFIG, batch_size=fit))
    assert all(a.error is None for a in got) and len(got) == 5
    assert set(rec.sizes) == {1} and fit.n == 1 and not rec.failed


def test_a_sample_too_large_for_the_gpu_is_an_error_answer_and_the_run_goes_on(backend):
    sizes = [(84, 84)] + [(28, 28)] * 3
    gpu = _Gpu(free=2 * GIB, fixed=0, per_pixel=3 * GIB / (84 * 84))    # the large chip needs 3 GiB
    rec = _OnGpu(backend, gpu)
    fit = BatchFit.for_backend("auto", rec)
    got = list(answer_all(rec, _samples(sizes), _prepare_for(sizes), CONFIG, batch_size=fit))
    assert [a.id for a in got] == ["s0", "s1", "s2", "s3"]
    assert "out of GPU memory" in got[0].error and all(a.error is None for a in got[1:])
    assert fit.n == 1 and fit.note == "1 (out of GPU memory with one sample)"


def test_a_batch_that_runs_out_after_measuring_halves_and_nothing_is_lost(backend):
    sizes = [(28, 28)] * 24
    gpu = _Gpu(free=8 * GIB, fixed=0, per_pixel=0.5 * GIB / (28 * 28))
    rec = _OnGpu(backend, gpu)
    fit = BatchFit.for_backend("auto", rec)
    fit.n, fit.meter = 16, None               # as if sized earlier, before another process took memory
    gpu.free = 4 * GIB
    got = list(answer_all(rec, _samples(sizes), _prepare_for(sizes), CONFIG, batch_size=fit))
    assert [a.id for a in got] == [f"s{i}" for i in range(24)] and all(a.error is None for a in got)
    assert rec.failed[0] == 16 and fit.n == 8 and "halved" in fit.note
    assert max(rec.sizes) == 8


def test_auto_off_the_gpu_is_a_small_fixed_batch(backend):
    fit = BatchFit.for_backend("auto", backend)
    assert backend.memory_meter() is None and fit.n == 4 and "no GPU memory to measure" in fit.note
    assert BatchFit.for_backend(6, backend).n == 6


@pytest.mark.parametrize("value,want", [("auto", "auto"), ("AUTO", "auto"), (8, 8), ("8", 8), (256, 256)])
def test_batch_size_values(value, want):
    assert parse_batch_size(value) == want


@pytest.mark.parametrize("value", [0, 257, -1, "lots", "8.5", 2.5, True, None])
def test_bad_batch_sizes_are_refused_with_what_is_allowed(value):
    with pytest.raises(ValueError, match=r"1\.\.256 or 'auto'"):
        parse_batch_size(value)


def test_run_config_batch_size_defaults_to_auto_and_round_trips(tmp_path):
    src = tmp_path / "t.json"
    src.write_text("[]")
    cfg = RunConfig.from_dict({"dataset": {"source": str(src)}, "backend": {"model": "m"}})
    assert cfg.batch_size == "auto"
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.batch_size == "auto"
    assert RunConfig.from_dict({**cfg.to_dict(), "batch_size": 12}).batch_size == 12
    with pytest.raises(BenchmarkError, match=r"batch_size must be 1\.\.256 or 'auto', got 'lots'"):
        RunConfig.from_dict({**cfg.to_dict(), "batch_size": "lots"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_a_real_gpu_keeps_one_by_ones_answers(tiny_qwen):
    gpu = LocalBackend(tiny_qwen, device="cuda", dtype="float32")
    gpu.load()
    sizes = [(200, 200)] * 24 + [(300, 400)] * 8
    samples, prepare = _samples(sizes), _prepare_for(sizes)
    fit = BatchFit.for_backend("auto", gpu)
    got = list(answer_all(gpu, samples, prepare, CONFIG, batch_size=fit))
    assert [a.id for a in got] == [s.id for s in samples] and all(a.error is None for a in got)
    assert fit.n > 1 and "free" in fit.note
    assert [a.text for a in got] == _one_by_one(gpu, samples, prepare)
