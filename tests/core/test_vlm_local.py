"""LocalBackend on tiny randomly initialised models built in the session (no downloads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sarlang_core.errors import CancelledError, ModelError, RequestError
from sarlang_core.progress import CancelToken
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig, VLMBackend
from sarlang_core.vlm.local import LocalBackend
from sarlang_core.vlm.processors import ensure_processor, load_processor
from sarlang_core.vlm.streaming import IncrementalDecoder, TokenQueue

from .vlm_fixtures import sar_image

Q = [ChatTurn("user", "How many ships are there in the image?")]
GREEDY = GenerationConfig(max_new_tokens=24, temperature=0.0, seed=0)


@pytest.fixture(scope="module")
def qwen(tiny_qwen):
    backend = LocalBackend(tiny_qwen, device="cpu")
    backend.load()
    yield backend
    backend.unload()


@pytest.fixture(scope="module")
def image():
    return sar_image(300, 400, seed=4)


def test_load_reports_stages_and_gives_a_processor(tiny_qwen, tiny_lora):
    seen = []
    backend = LocalBackend(tiny_qwen, tiny_lora, device="cpu")
    assert isinstance(backend, VLMBackend) and not backend.loaded
    backend.load(progress=seen.append)
    assert [p.stage for p in seen] == ["config", "processor", "weights", "adapter", "ready"]
    assert seen[-1].fraction == 1.0
    proc = backend.processor
    assert proc.image_processor is not None and proc.tokenizer is not None
    assert "Processor" in type(proc).__name__ and "Tokenizer" not in type(proc).__name__
    assert backend.gpu_memory() is None
    backend.unload()
    assert not backend.loaded


def test_stock_autoprocessor_trap_is_guarded(tiny_qwen):
    """transformers' AutoProcessor needs torchvision for Qwen folders (or returns a tokenizer):
    our loader builds the processor itself and refuses anything that is not a processor."""
    from transformers import AutoTokenizer

    proc = load_processor(tiny_qwen, "qwen2_5_vl")
    assert proc.video_processor is None if hasattr(proc, "video_processor") else True
    tok = AutoTokenizer.from_pretrained(tiny_qwen, local_files_only=True)
    with pytest.raises(ModelError, match="not an image\\+text processor"):
        ensure_processor(tok, tiny_qwen)


def test_chat_template_puts_the_image_with_the_first_question(qwen, image):
    turns = [ChatTurn("user", "Describe the image."), ChatTurn("assistant", "A harbor."),
             ChatTurn("user", "How many ships?")]
    text = qwen.prompt_text(image, turns)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 1
    assert "<|vision_start|><|image_pad|><|vision_end|>Describe the image.<|im_end|>" in text
    assert "<|im_start|>assistant\nA harbor.<|im_end|>" in text
    assert text.endswith("<|im_start|>user\nHow many ships?<|im_end|>\n<|im_start|>assistant\n")
    assert "<|image_pad|>" not in qwen.prompt_text(None, Q)


def test_sar_image_goes_through(qwen, image):
    assert image.mode == "L"
    inputs = qwen.prepare_inputs(image, Q)
    t, gh, gw = inputs["image_grid_thw"][0].tolist()
    assert inputs["pixel_values"].shape[0] == t * gh * gw
    image_tokens = (inputs["input_ids"][0] == qwen.model.config.image_token_id).sum().item()
    assert image_tokens == t * gh * gw // 4
    assert isinstance(qwen.answer(image, Q, GenerationConfig(max_new_tokens=5)), str)
    assert isinstance(qwen.answer(np.asarray(image), Q, GenerationConfig(max_new_tokens=2)), str)  # arrays too


def test_stream_pieces_join_to_the_greedy_answer(qwen, image):
    pieces = list(qwen.stream(image, Q, GREEDY))
    assert len(pieces) >= 3
    assert "".join(pieces) == qwen.answer(image, Q, GREEDY)
    # greedy is reproducible (the split into pieces may differ: a late consumer gets tokens batched)
    assert "".join(qwen.stream(image, Q, GREEDY)) == "".join(pieces)


def test_sampling_is_reproducible_with_a_seed(qwen, image):
    cfg = GenerationConfig(max_new_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    assert "".join(qwen.stream(image, Q, cfg)) == qwen.answer(image, Q, cfg)


def test_incremental_decoder_handles_split_utf8(qwen):
    tok = qwen.processor.tokenizer
    text = "Ships: 3 · é ü ⛴ 船 done"
    ids = tok.encode(text, add_special_tokens=False)
    dec = IncrementalDecoder(tok)
    pieces = [dec.add([i]) for i in ids] + [dec.add([], final=True)]
    assert "".join(pieces) == tok.decode(ids) == text
    assert not any("\ufffd" in p for p in pieces)


def test_cancel_stops_within_a_few_tokens(qwen, image):
    cancel, timings, n = CancelToken(), [], 0
    inputs = qwen.prepare_inputs(image, Q)
    with pytest.raises(CancelledError):
        for _ in qwen._stream(inputs, GenerationConfig(max_new_tokens=400), cancel, timings=timings):
            n += 1
            if n == 2:
                cancel.cancel()
    assert len(timings) <= n + 3          # tokens produced after the cancel
    assert qwen.answer(image, Q, GenerationConfig(max_new_tokens=3))   # the model is free again

    done = CancelToken()
    done.cancel()
    with pytest.raises(CancelledError):
        list(qwen.stream(image, Q, GREEDY, cancel=done))


def test_closing_the_stream_stops_generation(qwen, image, monkeypatch):

    produced = []
    put = TokenQueue.put
    monkeypatch.setattr(TokenQueue, "put", lambda self, v: (produced.append(1), put(self, v)))
    gen = qwen.stream(image, Q, GenerationConfig(max_new_tokens=400))
    next(gen)
    gen.close()                                   # stops the worker and waits for it
    n = len(produced)
    assert n <= 50                                # a few tokens (how many depends on the machine's load), not 400
    monkeypatch.undo()
    assert len(produced) == n                     # nothing generated after close() returned
    assert "".join(qwen.stream(image, Q, GREEDY)) == qwen.answer(image, Q, GREEDY)


def test_lora_changes_logits_and_reload_reproduces_them(tiny_qwen, tiny_lora, qwen, image):
    def last_logits(backend):
        with torch.no_grad():
            return backend.model(**backend.prepare_inputs(image, Q)).logits[0, -1]

    with_lora = LocalBackend(tiny_qwen, tiny_lora, device="cpu")
    with_lora.load()
    base, tuned = last_logits(qwen), last_logits(with_lora)
    assert (base - tuned).abs().max() > 1e-3
    assert with_lora.identity()["adapter"] == tiny_lora.name
    with_lora.unload()
    with_lora.load()
    assert torch.allclose(last_logits(with_lora), tuned, atol=1e-6)
    again = LocalBackend(tiny_qwen, tiny_lora, device="cpu")
    again.load()
    assert torch.allclose(last_logits(again), tuned, atol=1e-6)


@pytest.mark.parametrize("w,h", [(400, 300), (448, 448), (1000, 200), (50, 60), (2000, 1500)])
def test_model_input_size_matches_the_processor_grid(qwen, w, h):
    from PIL import Image

    grid = qwen.processor.image_processor(images=[Image.new("RGB", (w, h))], return_tensors="pt")["image_grid_thw"]
    _, gh, gw = grid[0].tolist()
    assert qwen.model_input_size(w, h) == (gw * 14, gh * 14)
    mw, mh = qwen.model_input_size(w, h)
    assert mw % 28 == 0 and mh % 28 == 0


def test_model_input_size_without_loading(tiny_qwen):
    backend = LocalBackend(tiny_qwen)
    assert backend.model_input_size(400, 300) == (392, 308)       # FIELD_NOTES: 300 x 400 -> 308 x 392
    with pytest.raises(RequestError):
        backend.model_input_size(0, 10)
    with pytest.raises(RequestError, match="aspect ratio"):
        backend.model_input_size(10_000, 20)


def test_generation_config_and_turns_are_validated(qwen, image):
    for bad in (dict(max_new_tokens=0), dict(max_new_tokens=10_000), dict(temperature=-0.1),
                dict(temperature=2.5), dict(top_p=0.0), dict(top_p=1.5)):
        with pytest.raises(RequestError):
            GenerationConfig(**bad)
    with pytest.raises(RequestError):
        qwen.stream(image, [], GREEDY)
    with pytest.raises(RequestError):
        qwen.stream(image, [ChatTurn("user", "hi"), ChatTurn("assistant", "hello")], GREEDY)
    with pytest.raises(RequestError):
        qwen.stream(image, [ChatTurn("user", "   ")], GREEDY)
    with pytest.raises(RequestError):
        qwen.stream("not an image", Q, GREEDY)
    with pytest.raises(RequestError):
        ChatTurn("system", "x")


def test_identity_and_not_loaded(tiny_qwen, image):
    backend = LocalBackend(tiny_qwen, device="cpu")
    ident = backend.identity()
    assert ident == {"backend": "local", "model": tiny_qwen.name, "model_path": str(tiny_qwen),
                     "family": "qwen2_5_vl", "adapter": None, "adapter_path": None, "device": "cpu",
                     "dtype": "auto", "decoding": "auto", "decoding_note": "", "device_note": ""}
    with pytest.raises(ModelError, match="not loaded"):
        backend.stream(image, Q, GREEDY)
    backend.load()
    assert backend.identity()["dtype"] == "float32"
    assert backend.identity()["decoding"] == "reference"     # auto on the CPU
    with pytest.raises(ModelError, match="dtype"):
        LocalBackend(tiny_qwen, dtype="int3").load()


def test_cancel_during_load(tiny_qwen):
    cancel = CancelToken()
    backend = LocalBackend(tiny_qwen, device="cpu")

    def progress(p):
        if p.stage == "processor":
            cancel.cancel()

    with pytest.raises(CancelledError):
        backend.load(progress=progress, cancel=cancel)
    assert not backend.loaded


def test_llava_family(tiny_llava, image):
    backend = LocalBackend(tiny_llava, device="cpu")
    backend.load()
    assert backend.family == "llava" and backend.processor.image_processor is not None
    assert backend.prompt_text(image, Q) == "USER: <image>\nHow many ships are there in the image? ASSISTANT:"
    inputs = backend.prepare_inputs(image, Q)
    assert tuple(inputs["pixel_values"].shape[-2:])[::-1] == backend.model_input_size(*image.size) == (112, 112)
    cfg = GenerationConfig(max_new_tokens=12)
    assert "".join(backend.stream(image, Q, cfg)) == backend.answer(image, Q, cfg)


def test_llava_processor_is_built_explicitly_when_autoprocessor_gives_a_tokenizer(tiny_llava, monkeypatch):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(tiny_llava, local_files_only=True)
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: tok)   # trap 2
    proc = load_processor(tiny_llava, "llava")
    assert type(proc).__name__ == "LlavaProcessor" and proc.image_processor.crop_size["height"] == 112
    assert proc.patch_size == 14 and proc.vision_feature_select_strategy == "default"
