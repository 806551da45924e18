"""A GPU that stops working mid-answer (issue 14's bad input): the chat's next question runs on the
CPU, a benchmark run stops resumably instead of failing every sample after it.

The failure is injected where torch raises it (``model.generate``) on the tiny model, which runs on
the CPU here. Everything around it is real: the unload, the
reload on the CPU, the run folder and its resume.
"""

import json

import pytest

from sarlang_core.errors import DeviceLostError, ModelError, OutOfMemoryError
from sarlang_core.evaluate.run_config import BackendSpec, BenchmarkError, DatasetSpec, RunConfig
from sarlang_core.evaluate.runner import BenchmarkRun
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.gpu_faults import is_device_lost
from sarlang_core.vlm.local import LocalBackend

from .test_evaluate_runner import _store
from .vlm_fixtures import sar_image

CFG = GenerationConfig(max_new_tokens=6)
Q = [ChatTurn("user", "How many ships are there?")]
LOST = "CUDA error: unspecified launch failure\nCUDA kernel errors might be asynchronously reported"


def _on_a_gpu_that_fails(backend: LocalBackend, after: int = 0) -> None:
    """Make the ``after``-th next generate call of ``backend`` fail as on a GPU that is gone."""
    calls = {"n": 0}
    real = backend.model.generate

    def generate(*a, **k):
        calls["n"] += 1
        if calls["n"] > after:
            raise RuntimeError(LOST)
        return real(*a, **k)

    backend.model.generate = generate


@pytest.mark.parametrize("exc, lost", [
    (RuntimeError(LOST), True),
    (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
    (RuntimeError("no CUDA-capable device is detected"), True),
    (RuntimeError("mat1 and mat2 shapes cannot be multiplied (3x4 and 5x6)"), False),
    (ValueError("CUDA error: but not a runtime error"), False),
])
def test_which_errors_mean_the_gpu_is_gone(exc, lost):
    assert is_device_lost(exc) is lost


def test_out_of_memory_is_not_a_lost_gpu():
    import torch

    assert not is_device_lost(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))


def test_the_chat_goes_on_on_the_cpu_after_the_gpu_is_lost(tiny_qwen):
    backend = LocalBackend(tiny_qwen, device="cpu")
    backend.load()
    image = sar_image(200, 260)
    expected = backend.answer(image, Q, CFG)
    _on_a_gpu_that_fails(backend)
    with pytest.raises(DeviceLostError, match="GPU stopped working.*loads on the CPU"):
        "".join(backend.stream(image, Q, CFG))
    assert not backend.loaded                             # the GPU's tensors are dropped
    assert "".join(backend.stream(image, Q, CFG)) == expected     # the next question: reloaded, on the CPU
    ident = backend.identity()
    assert ident["device"] == "cpu" and "GPU stopped working" in ident["device_note"]


def test_other_failures_are_not_mistaken_for_a_lost_gpu(tiny_qwen):
    backend = LocalBackend(tiny_qwen, device="cpu")
    backend.load()

    def broken(*_a, **_k):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    backend.model.generate = broken
    with pytest.raises(ModelError, match="generation failed") as err:
        backend.answer(sar_image(64, 64), Q, CFG)
    assert not isinstance(err.value, (DeviceLostError, OutOfMemoryError))
    assert backend.loaded and backend.device_note == ""


@pytest.mark.parametrize("batch, calls_before", [(1, 2), (2, 1)])   # the fault at the third sample
def test_a_benchmark_run_stops_resumably_when_the_gpu_is_lost(tmp_path, tiny_qwen, batch, calls_before):
    db = _store(tmp_path, n=4)
    cfg = RunConfig(name="gpu", task="caption", backend=BackendSpec(model=str(tiny_qwen)),
                    dataset=DatasetSpec(source=str(db)), generation=CFG, batch_size=batch)
    reference = BenchmarkRun.create(tmp_path / "ref", cfg)
    reference.execute(score=False)
    backend = LocalBackend(tiny_qwen, device="cpu")
    backend.load()
    _on_a_gpu_that_fails(backend, after=calls_before)
    run = BenchmarkRun.create(tmp_path / "run", cfg)
    with pytest.raises(BenchmarkError, match="GPU stopped working.*`bench resume` continues"):
        run.execute(backend=backend, score=False)
    preds = (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 2                                           # the two answered before the fault
    errors = tmp_path / "run" / "errors.jsonl"
    assert not errors.exists() or errors.read_text() == ""           # no sample blamed for the GPU
    outcome = json.loads((tmp_path / "run" / "outcome.json").read_text())
    assert outcome["state"] == "failed" and "bench resume" in outcome["message"]
    status = BenchmarkRun.open(tmp_path / "run").execute(score=False)   # a new process: the CPU here
    assert status.state == "generated" and status.done == 4 and status.failed == 0
    assert [r["prediction"] for r in BenchmarkRun.open(tmp_path / "run").samples()] == \
        [r["prediction"] for r in reference.samples()]
