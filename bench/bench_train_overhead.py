"""Fine-tuning loop overhead per optimizer step, beyond the model's forward + backward + optimizer.

The tiny Qwen2.5-VL (built at run time) with the engine's own LoRA (``load_trainable_model``:
rank 8, all linear layers of the language model), batch 1, gradient accumulation 1, fp32 on the
CPU, one PNG per sample. Three ways to run the same steps, interleaved in each repeat:

  bare, pre-encoded   a plain loop over batches encoded once before timing: forward, backward,
                      clip_grad_norm_, AdamW step, cosine scheduler step, zero_grad. The model's cost.
  bare + encoding     the same loop, each step reading its image and encoding it through the
                      engine's own TrainDataset + Collator (the processor runs per step, as in ours).
  engine              ``sarlang_core.train.engine.train`` in-process (transformers' Trainer, our
                      callbacks, events.jsonl, state); its step events' ``step_time_s``.

Overhead (a) = engine / pre-encoded - 1: everything ours costs per step, data encoding included.
Overhead (b) = engine / bare + encoding - 1: the Trainer loop and our callbacks alone.
The first ``--warmup`` steps of each run are left out; per run the median step time; the figure is
the median over repeats of the per-repeat ratios. Target (issue): overhead <= 5 %.

Run: .venv/bin/python bench/bench_train_overhead.py [--size 224] [--steps 40] [--repeats 3]
     [--profile]   (cProfile of one engine run, top functions by own time, after the figures)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, List

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import machine  # noqa: E402


def make_data(root: Path, size: int, n: int) -> Path:
    recs = []
    for i in range(n):
        name = f"chip{i}.png"
        rng = np.random.default_rng(i)
        Image.fromarray((rng.gamma(1.0, 60.0, (size, size)).clip(0, 255)).astype(np.uint8)).save(root / name)
        recs.append({"messages": [{"role": "user", "content": "<image>How many ships are there in the image?"},
                                  {"role": "assistant", "content": f"There are {i % 5} ships in the image."}],
                     "images": [name]})
    path = root / "train.json"
    path.write_text(json.dumps(recs))
    return path


class Bare:
    """The baseline: the engine's model, data pieces and optimizer settings, in a plain loop."""

    def __init__(self, config) -> None:
        from sarlang_core.train.data import load_samples
        from sarlang_core.train.encode import Collator
        from sarlang_core.train.plan import plan_samples, resolve_model
        from sarlang_core.train.trainer_parts import TrainDataset, build_image_loader
        from sarlang_core.vlm.processors import load_processor

        self.config = config
        self.model_path, self.family = resolve_model(config.model)
        processor = load_processor(self.model_path, self.family)
        planned = plan_samples(processor, self.family, config, load_samples(config))
        self.dataset = TrainDataset(planned, build_image_loader(None, Path(tempfile.gettempdir())))
        pad = processor.tokenizer.pad_token_id
        self.collate = Collator(pad if pad is not None else 0)

    def run(self, steps: int, *, encode_each_step: bool) -> List[float]:
        import torch
        from transformers import get_scheduler

        from sarlang_core.train.engine import load_trainable_model

        cfg = self.config
        model = load_trainable_model(self.model_path, cfg, self.family, "fp32")
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        sched = get_scheduler(cfg.scheduler, opt, num_warmup_steps=max(1, int(steps * cfg.warmup_ratio)),
                              num_training_steps=steps)
        n = len(self.dataset)
        order = np.random.default_rng(cfg.seed).permutation(np.arange(steps) % n)
        encoded = None if encode_each_step else [self.collate([self.dataset[i]]) for i in range(n)]
        times = []
        for k in range(steps):
            t0 = time.perf_counter()
            batch = self.collate([self.dataset[int(order[k])]]) if encoded is None else encoded[int(order[k])]
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            float(loss.detach())
            times.append(time.perf_counter() - t0)
        return times


def engine_run(config, run_dir: Path, *, stock: bool = False, workers: int = -1) -> List[float]:
    """The engine's step times; ``stock``: with transformers' own Trainer and its token count
    (include_num_input_tokens_seen, one .item() per micro-batch), as the engine was before LoraTrainer;
    ``workers`` >= 0: that many DataLoader workers instead of the engine's choice (0 on a CPU)."""
    from sarlang_core.train import engine

    events: List[dict] = []
    saved = engine.trainer_class, engine.training_arguments
    if stock or workers >= 0:
        from transformers import Trainer

        def changed_arguments(*a, **kw):
            args = saved[1](*a, **kw)
            if stock:
                args.include_num_input_tokens_seen = "non_padding"
            if workers >= 0:
                args.dataloader_num_workers = workers
            return args
        engine.training_arguments = changed_arguments
        if stock:
            engine.trainer_class = lambda: Trainer
    try:
        engine.train(run_dir, config, None, emit=events.append)
    finally:
        engine.trainer_class, engine.training_arguments = saved
    return [e["step_time_s"] for e in events if e.get("event") == "step"]


def _median_after(times: List[float], warmup: int) -> float:
    return statistics.median(times[warmup:])


def profile_engine(config, run_dir: Path, top: int = 25) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    engine_run(config, run_dir)
    prof.disable()
    stats = pstats.Stats(prof)
    print(f"\ncProfile of one engine run ({config.max_steps} steps), top {top} by own time:")
    stats.sort_stats("tottime").print_stats(top)
    print("cumulative, our code and the Trainer's per-step paths:")
    stats.sort_stats("cumulative").print_stats(r"(sarlang_core/train|trainer\.py|trainer_callback|"
                                                r"data_loader|image_processing|processing_utils|tokenization)", 40)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=224, help="image side in pixels (square PNG chips)")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    ap.add_argument("--warmup", type=int, default=5, help="first steps of each run left out")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--before", action="store_true", help="also the engine on the stock Trainer (before LoraTrainer)")
    ap.add_argument("--workers", type=int, default=0, help="also the engine with this many DataLoader workers")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    import torch

    from sarlang_core.train.config import TrainConfig
    from sarlang_core.vlm.tiny import build_tiny_qwen2_5_vl

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_qwen2_5_vl(root / "tiny-qwen")
        data = make_data(root, args.size, args.samples)
        config = TrainConfig(model=str(model), dataset=str(data), max_steps=args.steps, batch_size=1, grad_accum=1,
                             save_every=10_000_000, precision="fp32", learning_rate=1e-4)
        bare = Bare(config)
        kinds: dict[str, Callable[[int], List[float]]] = {
            "bare, pre-encoded": lambda r: bare.run(args.steps, encode_each_step=False),
            "bare + encoding": lambda r: bare.run(args.steps, encode_each_step=True),
            "engine": lambda r: engine_run(config, root / f"run{r}"),
        }
        if args.workers:
            kinds[f"engine, {args.workers} workers"] = lambda r: engine_run(config, root / f"w{r}",
                                                                             workers=args.workers)
        if args.before:
            kinds["engine, stock Trainer"] = lambda r: engine_run(config, root / f"stock{r}", stock=True)
        per_run: dict[str, List[float]] = {k: [] for k in kinds}
        kinds["engine"](-1)                    # imports, first-call caches
        for r in range(args.repeats):
            order = list(kinds) if r % 2 == 0 else list(reversed(kinds))
            for name in order:
                per_run[name].append(_median_after(kinds[name](r), args.warmup) * 1000)
        over_a = [e / p - 1 for e, p in zip(per_run["engine"], per_run["bare, pre-encoded"])]
        over_b = [e / b - 1 for e, b in zip(per_run["engine"], per_run["bare + encoding"])]
        enc = [b - p for b, p in zip(per_run["bare + encoding"], per_run["bare, pre-encoded"])]

        print(machine(), f"· torch {torch.__version__} · {torch.get_num_threads()} threads")
        tokens = bare.dataset.planned.lengths[0]
        print(f"tiny Qwen2.5-VL, LoRA r {config.lora_r} on the language model, fp32 CPU, batch 1, accumulation 1, "
              f"{args.size}x{args.size} PNG ({tokens} tokens/sample), {args.steps} steps per run, first "
              f"{args.warmup} left out, {args.repeats} repeats interleaved (order reversed every other repeat)")
        for name, vals in per_run.items():
            print(f"  {name:<24} median step {statistics.median(vals):7.1f} ms   "
                  f"(runs: {', '.join(f'{v:.1f}' for v in vals)})")
        print(f"  encoding per step (bare + encoding - pre-encoded): median {statistics.median(enc):.1f} ms")
        print(f"overhead (a) engine vs pre-encoded, data encoding included: median {statistics.median(over_a):+.1%} "
              f"(repeats: {', '.join(f'{v:+.1%}' for v in over_a)})")
        print(f"overhead (b) engine vs bare + encoding, Trainer loop + callbacks: median "
              f"{statistics.median(over_b):+.1%} (repeats: {', '.join(f'{v:+.1%}' for v in over_b)}); "
              f"target <= 5 %")
        if args.workers:
            w = [e / p - 1 for e, p in zip(per_run[f"engine, {args.workers} workers"], per_run["bare, pre-encoded"])]
            print(f"overhead (a) of the engine with {args.workers} DataLoader worker(s) (encoding beside the model): "
                  f"median {statistics.median(w):+.1%} (repeats: {', '.join(f'{v:+.1%}' for v in w)})")
        if args.before:
            old = [e / b - 1 for e, b in zip(per_run["engine, stock Trainer"], per_run["bare + encoding"])]
            print(f"overhead (b) of the engine on the stock Trainer (before LoraTrainer): median "
                  f"{statistics.median(old):+.1%} (repeats: {', '.join(f'{v:+.1%}' for v in old)})")
        if args.profile:
            profile_engine(config, root / "run-profile")


if __name__ == "__main__":
    main()
