"""Fast decoding (issue 14): a static KV cache and compiled decoding give today's greedy answers.

On the tiny Qwen2.5-VL with sharp logits (``trainable_qwen``: its answers vary token by token, so a
changed logit shows), single answers, streams and mixed-size batches are compared with the reference
path. "compiled" runs dynamo with its "eager" backend here (inductor's code generation costs ~40 s
per model on these CPUs); on a GPU the test runs inductor with CUDA graphs, the chat's default.
"""

import pytest

from sarlang_core.errors import ModelError
from sarlang_core.vlm import decoding
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.local import LocalBackend

from .vlm_fixtures import sar_image

GREEDY = GenerationConfig(max_new_tokens=12, temperature=0.0)
QUESTIONS = ["How many ships are there?", "Describe the content of this image in detail, please."]


def _answers(backend):
    single = [backend.answer(sar_image(200, 260, i), [ChatTurn("user", q)], GREEDY) for i, q in enumerate(QUESTIONS)]
    streamed = "".join(backend.stream(sar_image(120, 300, 5), [ChatTurn("user", QUESTIONS[0])], GREEDY))
    batch = backend.generate_batch([sar_image(200, 260, 0), sar_image(56, 112, 1)],
                                   [[ChatTurn("user", q)] for q in QUESTIONS], GREEDY)
    return single, streamed, batch


def _caches_seen(backend, run):
    seen = []
    hook = backend.model.model.language_model.register_forward_pre_hook(
        lambda _m, _a, kw: seen.append(kw.get("cache")), with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return seen


@pytest.fixture(scope="module")
def reference(trainable_qwen):
    backend = LocalBackend(trainable_qwen, device="cpu", decode="reference")
    backend.load()
    return backend, _answers(backend)


def test_reference_answers_are_discriminating(reference):
    _backend, (single, _streamed, _batch) = reference
    assert len(set("".join(single))) > 4, single    # not one token repeated: a flipped logit would show


@pytest.mark.parametrize("mode", ["static", "compiled"])
def test_fast_decoding_gives_the_reference_greedy_answers(trainable_qwen, reference, mode, monkeypatch):
    monkeypatch.setenv(decoding.ENV_COMPILE_BACKEND, "eager")
    backend = LocalBackend(trainable_qwen, device="cpu", decode=mode)
    stages = []
    backend.load(progress=lambda p: stages.append(p.stage))
    assert backend.decode_mode == mode and backend.decode_note == ""
    assert ("compile" in stages) == (mode == "compiled")     # compiled at load, not at the first question
    assert backend.identity()["decoding"] == mode
    assert _answers(backend) == reference[1]


def test_static_decoding_really_uses_one_bucketed_static_cache(trainable_qwen):
    backend = LocalBackend(trainable_qwen, device="cpu", decode="static")
    backend.load()
    seen = _caches_seen(backend, lambda: backend.answer(sar_image(200, 260), [ChatTurn("user", "Ships?")], GREEDY))
    assert seen and all(type(c).__name__ == "StaticCache" for c in seen)
    assert seen[0].get_max_length() == decoding.CHAT_BUCKET
    ref = LocalBackend.from_loaded(backend.model, backend.processor, family="qwen2_5_vl", decode="reference")
    seen = _caches_seen(ref, lambda: ref.answer(sar_image(200, 260), [ChatTurn("user", "Ships?")], GREEDY))
    assert seen and all(type(c).__name__ == "DynamicCache" for c in seen)


def test_a_compiler_that_fails_leaves_the_reference_path_with_a_note(trainable_qwen, reference, monkeypatch):
    monkeypatch.setenv(decoding.ENV_COMPILE_BACKEND, "no-such-compiler")
    backend = LocalBackend(trainable_qwen, device="cpu", decode="compiled")
    backend.load()
    assert backend.decode_mode == "reference"
    assert "compiled decoding did not start" in backend.decode_note
    assert backend.identity()["decoding_note"] == backend.decode_note
    assert _answers(backend) == reference[1]


def test_modes_resolve_by_device_and_environment(monkeypatch):
    monkeypatch.delenv(decoding.ENV_DECODE, raising=False)
    assert decoding.resolve_decode_mode(None, "cuda:0") == "compiled"
    assert decoding.resolve_decode_mode(None, "cpu") == "reference"
    assert decoding.resolve_decode_mode("static", "cpu") == "static"
    monkeypatch.setenv(decoding.ENV_DECODE, "static")
    assert decoding.resolve_decode_mode(None, "cuda") == "static"
    assert decoding.resolve_decode_mode("reference", "cuda") == "reference"    # asked for beats the variable
    monkeypatch.setenv(decoding.ENV_DECODE, "turbo")
    with pytest.raises(ModelError, match="unknown decoding 'turbo'"):
        decoding.resolve_decode_mode(None, "cpu")


def test_cache_lengths_are_bucketed_so_questions_share_one_compiled_step():
    assert decoding.cache_length(1, 1) == decoding.CHAT_BUCKET
    assert decoding.cache_length(1400, 512) == decoding.CHAT_BUCKET
    assert decoding.cache_length(4000, 512) == 2 * decoding.CHAT_BUCKET
    assert decoding.cache_length(300, 32, decoding.BATCH_BUCKET) == decoding.BATCH_BUCKET


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA GPU")
def test_compiled_decoding_on_the_gpu_gives_the_reference_greedy_answers(trainable_qwen):
    answers = {}
    for mode in ("reference", "compiled"):
        backend = LocalBackend(trainable_qwen, device="cuda", dtype="float32", decode=mode)
        backend.load()
        assert backend.decode_note == ""
        answers[mode] = _answers(backend)
        backend.unload()
    assert answers["compiled"] == answers["reference"]
