"""Streaming cost of LocalBackend.stream against a bare model.generate, and (on CUDA) a
Qwen2.5-VL-3B-sized model: time to first token, tokens/s, peak GPU memory.

Run: .venv/bin/python bench/bench_vlm_stream.py [--tokens 64] [--runs 9] [--image 448] [--skip-cuda]

CPU part: the tiny Qwen2.5-VL of ``sarlang_core.vlm.tiny`` (random weights), greedy, exactly
``--tokens`` new tokens in both paths (min_new_tokens = max_new_tokens), runs interleaved,
medians. Latency = time from the streamer receiving a token on the generation thread to the
consumer holding it. Target: streaming costs <= 5 % tokens/s.
CUDA part: random weights in the published Qwen2.5-VL-3B-Instruct architecture (config below),
bf16, one 1024 x 1024 image; skipped without a GPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import machine  # noqa: E402
from PIL import Image  # noqa: E402

from sarlang_core import synthetic as syn  # noqa: E402
from sarlang_core.vlm.backend import ChatTurn, GenerationConfig  # noqa: E402
from sarlang_core.vlm.local import LocalBackend  # noqa: E402

QUESTION = [ChatTurn("user", "How many ships are there in the image?")]


def sar_image(size: int, seed: int = 3) -> Image.Image:
    refl = syn.reflectivity_map(size, size, seed)
    db = 10 * np.log10(syn.speckle(refl, 1.0, seed + 1) + 1e-6)
    return Image.fromarray(np.clip((db + 25) / 25 * 255, 0, 255).astype(np.uint8))


def compare(backend: LocalBackend, image: Image.Image, tokens: int, runs: int, sync=lambda: None) -> dict:
    """Interleaved bare-generate and stream runs on the same inputs; medians of seconds."""
    config = GenerationConfig(max_new_tokens=tokens, temperature=0.0, seed=0)
    backend.model.generation_config.min_new_tokens = tokens   # both paths: exactly `tokens` tokens
    inputs = backend.prepare_inputs(image, QUESTION)
    kw = backend.generation_kwargs(config)
    bare, stream, first, lat = [], [], [], []

    def run_bare():
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = backend.model.generate(**inputs, **kw)
        sync()
        bare.append(time.perf_counter() - t0)
        assert out.shape[1] - inputs["input_ids"].shape[1] == tokens

    def run_stream():
        timings = []
        t0 = time.perf_counter()
        for _ in backend._stream(inputs, config, None, timings=timings):
            pass
        sync()
        stream.append(time.perf_counter() - t0)
        first.append(timings[0][0] - t0)            # first token produced (prefill + 1 step)
        lat.extend(received - produced for produced, received in timings)
        assert len(timings) == tokens, len(timings)

    run_bare(), run_stream()            # warm-up
    bare.clear(), stream.clear(), first.clear(), lat.clear()
    for _ in range(runs):
        run_bare()
        run_stream()
    backend.model.generation_config.min_new_tokens = None
    return {"bare": statistics.median(bare), "stream": statistics.median(stream),
            "first": statistics.median(first), "lat_med": statistics.median(lat),
            "lat_p95": float(np.percentile(lat, 95)), "lat_max": max(lat),
            "paired": statistics.median(s / b - 1 for s, b in zip(stream, bare)),
            "bare_all": bare, "stream_all": stream}


def report(r: dict, tokens: int, label: str) -> None:
    tb, ts = tokens / r["bare"], tokens / r["stream"]
    print(f"{label}: {tokens} new tokens, medians of {len(r['bare_all'])} interleaved runs")
    print(f"  bare model.generate      {r['bare'] * 1000:8.1f} ms   {tb:8.1f} tokens/s")
    print(f"  LocalBackend.stream      {r['stream'] * 1000:8.1f} ms   {ts:8.1f} tokens/s   "
          f"overhead {(tb - ts) / tb * 100:+.1f} % tokens/s (target <= 5 %)")
    print(f"  paired runs: median stream/bare time {r['paired'] * 100:+.1f} %")
    print(f"  first token after        {r['first'] * 1000:8.1f} ms (prefill incl. vision tower)")
    print(f"  token -> consumer        median {r['lat_med'] * 1e6:7.0f} us   p95 {r['lat_p95'] * 1e6:7.0f} us   "
          f"max {r['lat_max'] * 1e6:7.0f} us")


def cpu_part(args) -> None:
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_qwen2_5_vl(Path(tmp) / "tiny-qwen2.5-vl")
        backend = LocalBackend(folder, device="cpu")
        backend.load()
        n = sum(p.numel() for p in backend.model.parameters())
        image = sar_image(args.image)
        w, h = backend.model_input_size(*image.size)
        print(f"tiny Qwen2.5-VL, {n / 1e6:.2f} M parameters, CPU float32, {torch.get_num_threads()} threads, "
              f"image {image.size[0]}² -> {w}x{h} ({w * h // 784} visual tokens)")
        report(compare(backend, image, args.tokens, args.runs), args.tokens, "CPU")


def qwen2_5_vl_3b_config(tok_ids: dict, layers: int = 36, depth: int = 32):
    """Qwen/Qwen2.5-VL-3B-Instruct's published architecture. The special-token ids are the tiny
    tokenizer's (the weights are random anyway; only the shapes matter for speed and memory)."""
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=layers,
                         num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
                         rms_norm_eps=1e-6, hidden_act="silu",
                         rope_parameters={"rope_type": "default", "rope_theta": 1000000.0,
                                          "mrope_section": [16, 24, 24]},
                         bos_token_id=tok_ids["<|endoftext|>"], eos_token_id=tok_ids["<|im_end|>"],
                         pad_token_id=tok_ids["<|endoftext|>"]),
        vision_config=dict(depth=depth, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                           fullatt_block_indexes=[i for i in (7, 15, 23, 31) if i < depth] or [depth - 1],
                           tokens_per_second=2, hidden_act="silu"),
        image_token_id=tok_ids["<|image_pad|>"], video_token_id=tok_ids["<|video_pad|>"],
        vision_start_token_id=tok_ids["<|vision_start|>"], vision_end_token_id=tok_ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def big_model_part(device: str, config, image_size: int, tokens: int, runs: int, label: str) -> None:
    """Random weights in ``config``'s architecture, bf16 on ``device``; stream vs bare generate."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from sarlang_core.vlm.processors import _qwen_processor_class, pil_image_processor
    from sarlang_core.vlm.tiny import QWEN_CHAT_TEMPLATE, _train_tokenizer

    cuda = device.startswith("cuda")
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    if cuda:
        torch.cuda.synchronize()
    n = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"\n{label}: {name}, random weights, {n / 1e9:.2f} B parameters, bf16, built in "
          f"{time.perf_counter() - t0:.1f} s")
    processor = _qwen_processor_class("qwen2_5_vl")(
        image_processor=pil_image_processor(min_pixels=3136, max_pixels=12845056), tokenizer=_train_tokenizer(),
        chat_template=QWEN_CHAT_TEMPLATE)
    backend = LocalBackend.from_loaded(model, processor, family="qwen2_5_vl", name="qwen2.5-vl-3b-arch")
    image = sar_image(image_size)
    w, h = backend.model_input_size(image_size, image_size)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    r = compare(backend, image, tokens, runs, sync=torch.cuda.synchronize if cuda else (lambda: None))
    print(f"  image {image_size}² -> {w}x{h} ({w * h // 784} visual tokens)")
    report(r, tokens, label)
    decode = (tokens - 1) / (r["stream"] - r["first"])
    print(f"  decode rate (stream)     {decode:8.1f} tokens/s after the first")
    mem = backend.gpu_memory()
    if mem:
        print(f"  GPU memory               peak {mem['peak_mb']:.0f} MB, allocated {mem['allocated_mb']:.0f} MB, "
              f"reserved {mem['reserved_mb']:.0f} MB (weights {n * 2 / 2**20:.0f} MB)")


def cuda_part(args) -> None:
    from sarlang_core.vlm.tiny import QWEN_SPECIAL_TOKENS, _train_tokenizer

    tok = _train_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    if args.dry_run:   # the CUDA code path on CPU with a 2-layer version of the architecture
        config = qwen2_5_vl_3b_config(ids, layers=2, depth=2)
        big_model_part("cpu", config, 448, 8, 2, "dry run (CPU, 2 text layers, 2 vision blocks)")
        return
    if args.skip_cuda or not torch.cuda.is_available():
        print("CUDA: skipped (no CUDA GPU)" if not args.skip_cuda else "CUDA: skipped (--skip-cuda)")
        return
    cuda_folder_check()
    if args.skip_big:
        return
    big_model_part("cuda", qwen2_5_vl_3b_config(ids), 1024, args.cuda_tokens, args.cuda_runs,
                   "CUDA, Qwen2.5-VL-3B architecture")


def cuda_folder_check() -> None:
    """The real loading path on CUDA (device auto -> cuda, bf16, device_map) with the tiny model."""
    from sarlang_core.vlm.tiny import build_tiny_lora, build_tiny_qwen2_5_vl

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_qwen2_5_vl(Path(tmp) / "tiny")
        backend = LocalBackend(folder, build_tiny_lora(folder, Path(tmp) / "lora"))
        backend.load()
        ident = backend.identity()
        cfg = GenerationConfig(max_new_tokens=16)
        image = sar_image(448)
        same = "".join(backend.stream(image, QUESTION, cfg)) == backend.answer(image, QUESTION, cfg)
        mem = backend.gpu_memory()
        backend.unload()
        del backend
        print(f"\nCUDA folder load (tiny + LoRA): device {ident['device']}, dtype {ident['dtype']}, "
              f"stream == answer: {same}, gpu_memory {mem and round(mem['allocated_mb'], 1)} MB, "
              f"after unload {torch.cuda.memory_allocated() / 2**20:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--image", type=int, default=448)
    ap.add_argument("--cuda-tokens", type=int, default=128)
    ap.add_argument("--cuda-runs", type=int, default=5)
    ap.add_argument("--skip-cuda", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-big", action="store_true", help="CUDA: only the tiny folder-load check")
    ap.add_argument("--dry-run", action="store_true", help="run the CUDA section's code on CPU, scaled down")
    args = ap.parse_args()
    print(machine())
    if not args.skip_cpu:
        cpu_part(args)
    cuda_part(args)


if __name__ == "__main__":
    main()
