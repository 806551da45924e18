"""Benchmark batching on the tiny Qwen2.5-VL: samples of mixed image sizes and prompt lengths are
grouped into batches by shape, yet come out in their own order with one-by-one's greedy answers;
out of memory halves the batch for the rest of the run; no sample is ever dropped."""

import pytest

from sarlang_core.errors import OutOfMemoryError, SarlangError
from sarlang_core.evaluate.dataset_source import Sample
from sarlang_core.evaluate.generation import answer_all
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.local import LocalBackend

from .vlm_fixtures import sar_image

CONFIG = GenerationConfig(max_new_tokens=6)
SIZES = [(300, 400), (120, 260), (300, 400), (200, 200), (120, 260), (300, 400), (56, 56), (200, 200),
         (300, 400), (120, 260), (200, 200)]
QUESTIONS = ["How many ships are there?", "Describe the content of this image.", "Is there a bridge?"]


@pytest.fixture(scope="module")
def backend(tiny_qwen):
    b = LocalBackend(tiny_qwen, device="cpu")
    b.load()
    return b


def _samples():
    return [Sample(f"s{i}", f"/img/{i}.png", QUESTIONS[i % 3], ("x",), "t") for i in range(len(SIZES))]


def _prepare(sample):
    i = int(sample.id[1:])
    return sar_image(*SIZES[i], i), [ChatTurn("user", sample.question)]


class _Recorder(LocalBackend):
    """The tiny model with the batch sizes it was asked for recorded and, as a GPU would, a memory
    cap: a batch larger than ``cap`` runs out of memory."""

    def __init__(self, inner, cap=None, drop=False):
        self.__dict__.update(inner.__dict__)
        self.cap, self.drop, self.sizes = cap, drop, []

    def generate_batch(self, images, turns_list, config=GenerationConfig(), *, cancel=None):
        self.sizes.append(len(images))
        if self.cap is not None and len(images) > self.cap:
            raise OutOfMemoryError("out of GPU memory while answering")
        texts = super().generate_batch(images, turns_list, config, cancel=cancel)
        return texts[:-1] if self.drop else texts


def test_grouped_batches_keep_the_order_and_one_by_ones_answers(backend):
    samples = _samples()
    one_by_one = [backend.answer(*_prepare(s), CONFIG) for s in samples]
    rec = _Recorder(backend)
    got = list(answer_all(rec, samples, _prepare, CONFIG, batch_size=3))
    assert [a.id for a in got] == [s.id for s in samples]
    assert [a.text for a in got] == one_by_one and all(a.error is None for a in got)
    assert rec.sizes and max(rec.sizes) == 3


def test_out_of_memory_halves_the_batch_and_the_run_goes_on(backend):
    samples = _samples()
    rec = _Recorder(backend, cap=2)
    got = list(answer_all(rec, samples, _prepare, CONFIG, batch_size=4))
    assert [a.id for a in got] == [s.id for s in samples] and all(a.error is None for a in got)
    assert [a.text for a in got] == [backend.answer(*_prepare(s), CONFIG) for s in samples]
    first_oom = rec.sizes.index(4)
    assert all(n <= 2 for n in rec.sizes[first_oom + 1:])       # the smaller batch is kept


def test_a_batch_short_of_answers_stops_instead_of_dropping_a_sample(backend):
    with pytest.raises(SarlangError, match="no answer for"):
        list(answer_all(_Recorder(backend, drop=True), _samples(), _prepare, CONFIG, batch_size=3))
