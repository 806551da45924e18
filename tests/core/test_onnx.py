"""The ONNX Runtime backend against torch on a real export of the tiny Qwen2.5-VL + LoRA adapter:
the same greedy tokens for images of several sizes and conversations, streaming and cancel,
regions through the chat service, the CUDA provider's fallback said plainly, and bad folders."""

import json
import shutil

import numpy as np
import pytest

from sarlang_core import synthetic as syn
from sarlang_core.errors import CancelledError, ModelError
from sarlang_core.progress import CancelToken
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig
from sarlang_core.vlm.models import check_registry, inspect_model
from sarlang_core.vlm.onnx_backend import OnnxBackend, _model_error
from sarlang_core.vlm.onnx_manifest import MANIFEST

GREEDY = GenerationConfig(max_new_tokens=24)
SIZES = [(84, 112), (448, 448), (300, 517), (1000, 60)]


def _image(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def torch_backend(tiny_qwen, tiny_lora):
    from sarlang_core.vlm.local import LocalBackend

    b = LocalBackend(tiny_qwen, tiny_lora)
    b.load()
    return b


@pytest.fixture(scope="module")
def onnx_backend(tiny_qwen_onnx):
    b = OnnxBackend(tiny_qwen_onnx, device="auto")
    b.load()
    return b


@pytest.mark.parametrize("size", SIZES)
def test_greedy_tokens_equal_torch(onnx_backend, torch_backend, size):
    image = _image(*size, seed=size[0])
    turns = [ChatTurn("user", "How many ships are there?")]
    prompt = onnx_backend.prepare(image, turns)
    inputs = torch_backend.prepare_inputs(image, turns)
    ref = torch_backend.generate_ids(inputs, GREEDY, None)[0, inputs["input_ids"].shape[1]:].tolist()
    ids = list(onnx_backend.generate_ids(prompt, GREEDY))
    eos = set(onnx_backend.manifest.eos_ids)
    assert ids == [t for t in ref if t not in eos][:len(ids)] and len(ids) == len([t for t in ref if t not in eos])
    assert onnx_backend.answer(image, turns, GREEDY) == torch_backend.answer(image, turns, GREEDY)


def test_the_kv_cache_kept_in_onnx_runtime_gives_the_copied_caches_logits(onnx_backend, monkeypatch):
    from sarlang_core.vlm import onnx_decoder

    prompt = onnx_backend.prepare(_image(200, 260, seed=5), [ChatTurn("user", "How many ships are there?")])
    runs = {}
    for flag in ("1", "0"):
        monkeypatch.setenv(onnx_decoder.ENV_IOBINDING, flag)
        dec = onnx_backend._decoder()
        assert dec.bound is (flag == "1")
        logits = [dec.step(onnx_backend._embeddings(prompt), _positions(onnx_backend, prompt))]
        for token in (5, 9, 11):                     # three more steps over a growing cache
            embeds = onnx_backend._sessions["embed"].run(None, {"input_ids": np.array([[token]])})[0]
            logits.append(dec.step(embeds, np.full((3, 1, 1), dec.length, dtype=np.int64)))
        runs[flag] = np.stack(logits)
        assert dec.length == prompt.input_ids.shape[1] + 3
    np.testing.assert_array_equal(runs["1"], runs["0"])


def _positions(backend, prompt):
    from sarlang_core.vlm.onnx_inputs import mrope_positions

    return mrope_positions(prompt.input_ids, int(backend.manifest.tokens["image"]), prompt.grid,
                           backend.settings.merge_size)[0]


def test_follow_up_turns_and_text_only_equal_torch(onnx_backend, torch_backend):
    image = _image(200, 260, seed=3)
    turns = [ChatTurn("user", "What is in the scene?"), ChatTurn("assistant", "Two ships near a pier."),
             ChatTurn("user", "Where is the larger one?")]
    assert onnx_backend.answer(image, turns, GREEDY) == torch_backend.answer(image, turns, GREEDY)
    text_only = [ChatTurn("user", "Say something.")]
    assert onnx_backend.answer(None, text_only, GREEDY) == torch_backend.answer(None, text_only, GREEDY)


def test_the_adapter_is_merged_in(tiny_qwen, onnx_backend, torch_backend):
    from sarlang_core.vlm.local import LocalBackend

    base = LocalBackend(tiny_qwen)
    base.load()
    image, turns = _image(448, 448, seed=5), [ChatTurn("user", "Describe the scene.")]
    config = GenerationConfig(max_new_tokens=8)
    onnx_logits = onnx_backend.prefill_logits(onnx_backend.prepare(image, turns))
    with_adapter = onnx_backend.answer(image, turns, config)
    assert with_adapter == torch_backend.answer(image, turns, config)
    import torch

    inputs = base.prepare_inputs(image, turns)
    with torch.no_grad():
        base_logits = base.model(**inputs).logits[0, -1].numpy()
    assert np.abs(onnx_logits - base_logits).max() > 1e-3     # the LoRA changed the model


def test_stream_pieces_join_to_the_answer_and_cancel_stops_between_tokens(onnx_backend):
    image, turns = _image(300, 300), [ChatTurn("user", "Describe the scene.")]
    whole = onnx_backend.answer(image, turns, GREEDY)
    pieces = list(onnx_backend.stream(image, turns, GREEDY))
    assert len(pieces) > 1 and "".join(pieces) == whole
    cancel = CancelToken()
    stream = onnx_backend.stream(image, turns, GREEDY, cancel=cancel)
    next(stream)
    cancel.cancel()
    with pytest.raises(CancelledError):
        list(stream)
    assert onnx_backend.answer(image, turns, GREEDY) == whole      # the backend is free and unchanged


def test_sampling_is_seeded(onnx_backend):
    image, turns = _image(120, 120), [ChatTurn("user", "Describe the scene.")]
    hot = GenerationConfig(max_new_tokens=12, temperature=1.5, top_p=0.9, seed=7)
    assert onnx_backend.answer(image, turns, hot) == onnx_backend.answer(image, turns, hot)
    other = GenerationConfig(max_new_tokens=12, temperature=1.5, top_p=0.9, seed=8)
    assert onnx_backend.answer(image, turns, hot) != onnx_backend.answer(image, turns, other)


def test_region_through_the_chat_service_matches_torch(tmp_path, onnx_backend, torch_backend):
    from sarlang_core.services import SceneSession
    from sarlang_core.services.ask import AskRequest, Conversation, ask_scene

    bands = syn.speckle(syn.reflectivity_map(240, 320, 2), 1.0, 5)[np.newaxis]
    scene = syn.write_scene(tmp_path / "scene.tif", bands, band_descriptions=("VV",))
    session = SceneSession.open(scene)
    try:
        request = AskRequest("How many ships?", source="region", rect=(40, 30, 150, 90), config=GREEDY)
        answers = []
        for backend in (onnx_backend, torch_backend):
            conv = Conversation(str(scene), request.pipeline)
            answers.append("".join(ask_scene(backend, session, conv, request)))
            ex = conv.exchanges[-1]
            assert ex.crop == (40.0, 30.0, 150.0, 90.0)
        assert answers[0] == answers[1]
    finally:
        session.close()
    for w, h in [(150, 90), (1000, 1000), (37, 2000)]:
        assert onnx_backend.model_input_size(w, h) == torch_backend.model_input_size(w, h)


def test_cuda_provider_fallback_is_said(tiny_qwen_onnx, onnx_backend):
    if onnx_backend.device == "cuda":
        pytest.skip("the CUDA provider starts on this machine")
    ident = onnx_backend.identity()
    assert ident["backend"] == "onnxruntime" and ident["device"] == "cpu"
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert "CUDA provider did not start" in onnx_backend.provider_note
        assert "missing" in onnx_backend.provider_note or "GPU" in onnx_backend.provider_note
    with pytest.raises(ModelError, match="device cuda was asked for"):
        OnnxBackend(tiny_qwen_onnx, device="cuda").load()
    cpu = OnnxBackend(tiny_qwen_onnx, device="cpu")
    cpu.load()
    assert cpu.device == "cpu" and cpu.provider_note is None


def test_out_of_memory_is_one_plain_sentence():
    exc = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned while running "
                       "MatMul node. Failed to allocate memory for requested buffer of size 2147483648")
    assert "out of GPU memory" in str(_model_error(exc))
    assert "ONNX Runtime failed" in str(_model_error(ValueError("shape mismatch")))


def test_the_export_is_a_model_folder_the_registry_takes(tmp_path, tiny_qwen_onnx):
    from sarlang_core.vlm.registry_write import register_model

    info = inspect_model(tiny_qwen_onnx)
    assert info.kind == "onnx" and info.family == "qwen2_5_vl" and "tiny-lora" in info.base_model
    reg = tmp_path / "models.json"
    register_model("field", tiny_qwen_onnx, registry=reg)
    (row,) = check_registry(reg)
    assert row.ok and "ONNX export of" in row.describe()
    with pytest.raises(ModelError, match="merged in"):
        register_model("again", tiny_qwen_onnx, adapter=tiny_qwen_onnx, registry=reg)
    from sarlang_core.vlm.factory import make_backend

    assert isinstance(make_backend("field", registry=str(reg)), OnnxBackend)
    with pytest.raises(ModelError, match="cannot take an adapter"):
        make_backend(str(tiny_qwen_onnx), adapter=str(tmp_path))


# ---------------------------------------------------------------- bad folders


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_a_folder_that_is_neither_transformers_nor_onnx(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match="an ONNX export is expected"):
        inspect_model(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ModelError, match="not made by `sarlang-cli export-onnx`"):
        inspect_model(tmp_path)


def test_an_export_of_another_format_or_incomplete(tmp_path, tiny_qwen_onnx):
    old = _copy(tiny_qwen_onnx, tmp_path / "old")
    data = json.loads((old / MANIFEST).read_text())
    data.update(format=0, app_version="0.0.9")
    (old / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"exported by SARLANG Studio 0\.0\.9 .*export it again"):
        OnnxBackend(old)
    part = _copy(tiny_qwen_onnx, tmp_path / "part")
    (part / "decoder.onnx").unlink()
    with pytest.raises(ModelError, match=r"incomplete \(decoder.onnx missing\)"):
        inspect_model(part)
    broken = _copy(tiny_qwen_onnx, tmp_path / "broken")
    (broken / "decoder.onnx").write_bytes(b"not a protobuf" * 10)
    backend = OnnxBackend(broken, device="cpu")
    with pytest.raises(ModelError, match="cannot load this graph"):
        backend.load()
    assert not backend.loaded


def test_export_refuses_other_families_and_taken_folders(tmp_path, tiny_llava, tiny_qwen):
    from sarlang_core.vlm.onnx_export import export_onnx

    with pytest.raises(ModelError, match="LLaVA-1.5 needs its CLIP tower"):
        export_onnx(tiny_llava, tmp_path / "llava-onnx")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(ModelError, match="not empty"):
        export_onnx(tiny_qwen, taken)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]


def test_a_cancelled_export_leaves_nothing(tmp_path, tiny_qwen):
    from sarlang_core.vlm.onnx_export import export_onnx

    cancel = CancelToken()

    def progress(p):
        if p.stage == "decoder":
            cancel.cancel()

    with pytest.raises(CancelledError):
        export_onnx(tiny_qwen, tmp_path / "out", progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


def test_large_graphs_keep_their_weights_in_one_data_file(tmp_path, tiny_qwen, monkeypatch):
    """Past 2 GB torch writes a file per weight: the export gathers them into <graph>.onnx.data
    (forced here for the tiny model) and the graphs still agree with torch."""
    from sarlang_core.vlm import onnx_export

    monkeypatch.setattr(onnx_export, "EXTERNAL_ABOVE", 0)
    out = onnx_export.export_onnx(tiny_qwen, tmp_path / "big")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["chat_template.jinja", "decoder.onnx", "decoder.onnx.data", "embed.onnx", "embed.onnx.data",
                     "sarlang_onnx.json", "tokenizer.json", "vision.onnx", "vision.onnx.data"]
    assert (out / "decoder.onnx").stat().st_size < 200_000 < (out / "decoder.onnx.data").stat().st_size
    assert json.loads((out / MANIFEST).read_text())["check"]["same_next_token"]


@pytest.mark.cuda
def test_on_the_cuda_provider_greedy_tokens_equal_torch(tiny_qwen_onnx, torch_backend):
    backend = OnnxBackend(tiny_qwen_onnx, device="auto")
    backend.load()
    if backend.device != "cuda":
        pytest.skip(f"the CUDA provider does not start here: {backend.provider_note}")
    for size in SIZES:
        image, turns = _image(*size), [ChatTurn("user", "How many ships are there?")]
        assert backend.answer(image, turns, GREEDY) == torch_backend.answer(image, turns, GREEDY)
