"""Decoding modes of LocalBackend in the same run: reference (today's path), a static KV cache, and
compiled decoding (torch.compile; CUDA graphs on a GPU). Time to first token, tokens/s after it,
compile time, and whether the greedy tokens equal the reference's.

Run: .venv/bin/python bench/bench_decoding.py [--model tiny|wide|3b] [--image 448] [--tokens 64]
                                              [--runs 5] [--modes reference,static,compiled]
                                              [--device cpu|cuda]

  tiny  the 1 M-parameter test model (float32)
  wide  Qwen2.5-VL-3B widths with 2 text layers and 2 vision blocks (float32 on the CPU)
  3b    the published Qwen2.5-VL-3B architecture, random weights, bf16 (meant for a GPU)

Modes are interleaved run by run; medians. Exactly --tokens new tokens in every run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from bench_vlm_stream import QUESTION, qwen2_5_vl_3b_config, sar_image  # noqa: E402
from common import machine  # noqa: E402

from sarlang_core.vlm import decoding  # noqa: E402
from sarlang_core.vlm.backend import GenerationConfig  # noqa: E402
from sarlang_core.vlm.local import LocalBackend  # noqa: E402


def build(kind: str, device: str, tmp: Path):
    """(model, processor) for ``kind`` on ``device``."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    from sarlang_core.vlm.processors import _qwen_processor_class, pil_image_processor
    from sarlang_core.vlm.tiny import QWEN_CHAT_TEMPLATE, QWEN_SPECIAL_TOKENS, _train_tokenizer, build_tiny_qwen2_5_vl

    if kind == "tiny":
        backend = LocalBackend(build_tiny_qwen2_5_vl(tmp / "tiny"), device=device, dtype="float32",
                               decode="reference")
        backend.load()
        return backend.model, backend.processor
    tok = _train_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    config = qwen2_5_vl_3b_config(ids, layers=2, depth=2) if kind == "wide" else qwen2_5_vl_3b_config(ids)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype).eval()
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    processor = _qwen_processor_class("qwen2_5_vl")(
        image_processor=pil_image_processor(min_pixels=3136, max_pixels=12845056), tokenizer=tok,
        chat_template=QWEN_CHAT_TEMPLATE)
    return model, processor


def one_run(backend: LocalBackend, inputs, config: GenerationConfig, sync) -> tuple:
    """(seconds to the first token, tokens/s after it, the new token ids)."""
    timings: list = []
    ids: list = []
    t0 = time.perf_counter()
    for piece in backend._stream(inputs, config, None, timings=timings):
        ids.append(piece)
    sync()
    total = time.perf_counter() - t0
    first = timings[0][0] - t0
    return first, (len(timings) - 1) / max(total - first, 1e-9), "".join(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("tiny", "wide", "3b"), default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--image", type=int, default=448)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--modes", default="reference,static,compiled")
    args = ap.parse_args()
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    modes = args.modes.split(",")
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        model, processor = build(args.model, args.device, Path(tmp))
        n = sum(p.numel() for p in model.parameters())
        config = GenerationConfig(max_new_tokens=args.tokens, temperature=0.0, seed=0)
        model.generation_config.min_new_tokens = args.tokens
        backends, compile_s = {}, {}
        for mode in modes:
            backend = LocalBackend.from_loaded(model, processor, family="qwen2_5_vl", name=args.model, decode=mode)
            t0 = time.perf_counter()
            if mode == "compiled":
                note = decoding.warm_up(backend)
                if note:
                    print(f"compiled: {note}")
            sync()
            compile_s[mode] = time.perf_counter() - t0
            backends[mode] = backend
        image = sar_image(args.image)
        inputs = backends[modes[0]].prepare_inputs(image, QUESTION)
        w, h = backends[modes[0]].model_input_size(args.image, args.image)
        print(f"{args.model}: {n / 1e6:.0f} M parameters on {args.device} ({next(model.parameters()).dtype}), "
              f"torch {torch.__version__}, image {args.image}² -> {w}x{h} ({w * h // 784} visual tokens), "
              f"prompt {inputs['input_ids'].shape[1]} tokens, {args.tokens} new tokens, {args.runs} runs")
        for mode in modes:   # warm-up: the first answer at this prompt length
            one_run(backends[mode], inputs, config, sync)
        firsts: dict = {m: [] for m in modes}
        rates: dict = {m: [] for m in modes}
        texts: dict = {}
        for _ in range(args.runs):
            for mode in modes:
                f, r, text = one_run(backends[mode], inputs, config, sync)
                firsts[mode].append(f)
                rates[mode].append(r)
                texts[mode] = text
        base = statistics.median(rates[modes[0]])
        for mode in modes:
            rate, first = statistics.median(rates[mode]), statistics.median(firsts[mode])
            same = "same greedy text" if texts[mode] == texts[modes[0]] else "DIFFERENT greedy text"
            print(f"  {mode:10s} first token {first * 1000:8.1f} ms   {rate:8.1f} tokens/s ({rate / base:5.2f}x)   "
                  f"warm-up/compile {compile_s[mode]:6.1f} s   {same}")


if __name__ == "__main__":
    main()
