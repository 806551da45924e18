"""ONNX Runtime against torch on the same model and image: time to first token and tokens/s.

Run: .venv/bin/python bench/bench_onnx.py [--tokens 32] [--runs 5] [--image 448] [--wide-layers 2]

Models (random weights, exported with `sarlang-cli export-onnx`'s code):
- the tiny Qwen2.5-VL of ``sarlang_core.vlm.tiny`` (0.8 M parameters);
- "3B widths": Qwen2.5-VL-3B's published widths (text 2048 wide, 16 heads, 2 KV heads, vocab
  151,936; vision 1280 wide) with the depth cut to ``--wide-layers`` text layers and 4 vision
  blocks, so that export, torch and ONNX Runtime fit a 2-core CPU machine. Per-layer costs
  scale with depth; the embedding and output layers are the full 3B ones.
Both sides: CPU float32, greedy, exactly ``--tokens`` new tokens (torch: min_new_tokens; ONNX
Runtime: end-of-turn ignored), runs interleaved, medians. TTFT = the processor's work on the image
and prompt + vision + prefill + first token;
tokens/s = (tokens - 1) / (time after the first token). The greedy tokens are compared too.
ONNX Runtime runs twice: as by default (the KV cache kept in its memory between tokens through IO
binding on CUDA, copied out to numpy and back each token on the CPU) and with it always kept
(SARLANG_ORT_IOBINDING=1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from bench_vlm_stream import QUESTION, qwen2_5_vl_3b_config, sar_image  # noqa: E402
from common import machine  # noqa: E402

from sarlang_core.vlm.backend import GenerationConfig  # noqa: E402
from sarlang_core.vlm.local import LocalBackend  # noqa: E402
from sarlang_core.vlm.onnx_backend import OnnxBackend  # noqa: E402
from sarlang_core.vlm.onnx_decoder import ENV_IOBINDING  # noqa: E402
from sarlang_core.vlm.onnx_export import export_onnx  # noqa: E402
from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl  # noqa: E402


def wide_model(folder: Path, layers: int, depth: int) -> Path:
    """The tiny model's tokenizer, processor and template with 3B-width random weights."""
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    build_tiny_qwen2_5_vl(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>",
                                                     "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")}
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(qwen2_5_vl_3b_config(ids, layers=layers, depth=depth)).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    for f in folder.glob("model*.safetensors"):
        f.unlink()
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def torch_side(backend: LocalBackend, image, tokens: int):
    config = GenerationConfig(max_new_tokens=tokens)
    backend.model.generation_config.min_new_tokens = tokens
    start = time.perf_counter()
    inputs = backend.prepare_inputs(image, QUESTION)
    out = backend.generate_ids(inputs, config, None)
    whole = time.perf_counter() - start
    backend.model.generation_config.min_new_tokens = 1
    start = time.perf_counter()
    backend.generate_ids(backend.prepare_inputs(image, QUESTION), GenerationConfig(max_new_tokens=1), None)
    first = time.perf_counter() - start
    return first, whole, out[0, inputs["input_ids"].shape[1]:].tolist()


def onnx_side(backend: OnnxBackend, image, tokens: int):
    start = time.perf_counter()
    prompt = backend.prepare(image, QUESTION)
    ids = backend.generate_ids(prompt, GenerationConfig(max_new_tokens=tokens))
    got = [next(ids)]
    first = time.perf_counter() - start
    got += list(ids)
    return first, time.perf_counter() - start, got


def compare(name: str, model: Path, out: Path, image, tokens: int, runs: int, device: str = "cpu") -> dict:
    t0 = time.perf_counter()
    export_onnx(model, out)
    exported = time.perf_counter() - t0
    tb, ob = LocalBackend(model, device=device, dtype="float32"), OnnxBackend(out, device=device)
    tb.load()
    ob.load()
    ob.manifest.data["tokens"]["eos"] = []          # exactly ``tokens`` tokens, as min_new_tokens on torch
    params = sum(p.numel() for p in tb.model.parameters())
    rows: dict = {"torch": [], "onnxruntime": [], "ort, KV kept": []}
    same = True
    for _ in range(runs):
        ft, wt, t_ids = torch_side(tb, image, tokens)
        rows["torch"].append((ft, (tokens - 1) / max(wt - ft, 1e-9)))
        for row, binding in (("onnxruntime", "auto"), ("ort, KV kept", "1")):
            os.environ[ENV_IOBINDING] = binding     # the default (kept on CUDA, copied on the CPU), or kept
            fo, wo, o_ids = onnx_side(ob, image, tokens)
            same &= t_ids == o_ids
            rows[row].append((fo, (tokens - 1) / max(wo - fo, 1e-9)))
    os.environ.pop(ENV_IOBINDING, None)
    med = {k: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v)) for k, v in rows.items()}
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"\n{name} on {device}: {params / 1e6:,.1f} M parameters; export {exported:.1f} s, {size:,.0f} MiB; "
          f"greedy tokens equal: {same}")
    print(f"{'':14} {'TTFT ms':>9} {'tokens/s':>9}")
    for k, (f, tps) in med.items():
        print(f"{k:14} {f * 1000:9.1f} {tps:9.1f}")
    print(f"ONNX Runtime / torch: tokens/s x{med['onnxruntime'][1] / med['torch'][1]:.2f}, "
          f"TTFT x{med['torch'][0] / med['onnxruntime'][0]:.2f} faster; KV kept / default: tokens/s "
          f"x{med['ort, KV kept'][1] / med['onnxruntime'][1]:.2f}")
    tb.unload()
    ob.unload()
    return med


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--image", type=int, default=448)
    ap.add_argument("--wide-layers", type=int, default=2, help="text layers of the 3B-width model (0: skip it)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="both sides on this device")
    args = ap.parse_args()
    print(machine(), f"· torch {torch.__version__} on {torch.get_num_threads()} threads")
    image = sar_image(args.image)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        compare("tiny Qwen2.5-VL", build_tiny_qwen2_5_vl(root / "tiny"), root / "tiny-onnx", image, args.tokens,
                args.runs, args.device)
        if args.wide_layers:
            model = wide_model(root / "wide", args.wide_layers, depth=4)
            compare(f"Qwen2.5-VL-3B widths, {args.wide_layers} text layers + 4 vision blocks", model,
                    root / "wide-onnx", image, args.tokens, args.runs, args.device)


if __name__ == "__main__":
    main()
