"""`sarlang-cli train run|resume|status|stop|preview|merge|export-llamafactory|register|demo`.

With ``--progress-jsonl`` stdout carries one JSON object per line, for the GUI (QProcess):
    {"event": "progress", "stage": "data", "message": "..."}
    {"event": "start", "step": 0, "max_steps": 120, "world_size": 1}
    {"event": "step", "step": 12, "max_steps": 120, "epoch": 0.3, "loss": 2.41, "lr": 9.1e-05, "grad_norm": 1.2,
     "tokens_per_s": 5400.0, "samples_per_s": 9.6, "step_time_s": 0.83, "gpu_mem_gb": 11.2, "eta_s": 90.0}
    {"event": "eval", "step": 50, "eval_loss": 1.9}      {"event": "checkpoint", "step": 50}
    {"event": "done", "step": 120, "adapter": "RUN/adapter"}   {"event": "stopped", "step": 61}
    {"event": "error", "message": "..."}                         (then exit status 1)
Otherwise a line per logged step on stderr. SIGTERM or Ctrl+C (or `train stop RUN`) saves a
checkpoint after the current optimizer step and stops; `train resume RUN` continues.
Several GPUs: `torchrun --nproc_per_node 4 -m sarlang_core.cli train run ...`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Dict

from ..errors import SarlangError, TrainError
from .common import UsageParser, emit_json_line

# flag -> TrainConfig field, for the options every run takes
_FIELDS = {"images": "images", "split": "split", "eval_split": "eval_split", "epochs": "epochs",
           "max_steps": "max_steps", "lr": "learning_rate", "scheduler": "scheduler", "warmup_ratio": "warmup_ratio",
           "weight_decay": "weight_decay", "max_grad_norm": "max_grad_norm", "lora_r": "lora_r",
           "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "batch_size": "batch_size",
           "grad_accum": "grad_accum", "cutoff": "cutoff", "overlong": "overlong",
           "image_max_pixels": "image_max_pixels", "precision": "precision", "seed": "seed",
           "save_every": "save_every", "keep_checkpoints": "keep_checkpoints", "eval_every": "eval_every",
           "deepspeed": "deepspeed"}


def _help(name: str) -> str:
    from ..train.config import config_params

    p = config_params()[name]
    return p.help + (f" ({p.bounds_text()})" if p.kind in (int, float) else "")


def add_parsers(sub) -> None:
    from ..train.config import config_params

    params = config_params()
    train = sub.add_parser("train", help="LoRA fine-tuning: run, resume, stop, merge, export, register")
    tsub = train.add_subparsers(dest="train_cmd", metavar="STEP", parser_class=UsageParser)
    tsub.required = True
    run = tsub.add_parser("run", help="start a LoRA run into a new folder")
    prev = tsub.add_parser("preview", help="show formatted samples and token-length statistics, train nothing")
    for p in (run, prev):
        p.add_argument("--config", metavar="CONFIG.json", help="a saved TrainConfig (the flags below override it)")
        p.add_argument("--config-env", help=argparse.SUPPRESS)   # the GUI's way: config + pipeline as JSON
        p.add_argument("--model", help="base model: registry name or folder")
        p.add_argument("--dataset", help=params["dataset"].help)
        p.add_argument("--status", help="comma-separated review statuses (stores; default accepted,edited)")
        p.add_argument("--pipeline", metavar="FILE.json|paper|none",
                       help="preprocess images (default: a store's own pipeline; as stored for files and exports)")
        for flag, name in _FIELDS.items():
            kind = params[name].kind
            choices = params[name].choices or None
            p.add_argument("--" + flag.replace("_", "-"), dest=flag, type=None if kind is str else kind,
                           choices=choices, help=_help(name))
        p.add_argument("--train-vision", action="store_true", default=None, help=params["train_vision"].help)
        p.add_argument("--gradient-checkpointing", action="store_true", default=None,
                       help=params["gradient_checkpointing"].help)
    prev.add_argument("--count", type=int, default=3, help="samples to show (default 3)")
    run.add_argument("--out", required=True, metavar="RUN", help="the new run folder")
    res = tsub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    res.add_argument("run_dir")
    for p in (run, res):
        p.add_argument("--progress-jsonl", action="store_true", help="JSON-lines progress on stdout (for the GUI)")
        p.add_argument("--quiet", action="store_true", help="no per-step lines")
    st = tsub.add_parser("status", help="how far a run is, as JSON")
    st.add_argument("run_dir")
    stop = tsub.add_parser("stop", help="ask a running run to save a checkpoint and stop")
    stop.add_argument("run_dir")
    merge = tsub.add_parser("merge", help="merge a run's adapter into a standalone model folder")
    merge.add_argument("run_dir")
    merge.add_argument("--out", required=True, metavar="MODEL_DIR")
    exp = tsub.add_parser("export-llamafactory", help="write a LLaMA-Factory YAML + dataset for this run")
    exp.add_argument("run_dir")
    exp.add_argument("--out", required=True, metavar="DIR")
    reg = tsub.add_parser("register", help="add a run's adapter to the model registry (chat, benchmarks)")
    reg.add_argument("run_dir")
    reg.add_argument("--name", required=True)
    reg.add_argument("--registry", help="registry file (default: $SARLANG_MODELS or the user's)")
    reg.add_argument("--replace", action="store_true", help="replace an entry of the same name")
    demo = tsub.add_parser("demo", help="write a tiny random model and a toy dataset to try fine-tuning offline")
    demo.add_argument("out", metavar="DIR")
    train.set_defaults(handler=cmd_train)


def config_from_args(args) -> tuple:
    """(TrainConfig, pipeline JSON, pipeline choice) from --config/--config-env and the flags."""
    from ..services.training import pipeline_for
    from ..train.config import TrainConfig

    base: Dict[str, Any] = {}
    pipeline: Any = None
    from_env = False
    if args.config_env:
        raw = os.environ.get(args.config_env)
        if raw is None:
            raise TrainError(f"the environment variable {args.config_env} is not set")
        data = json.loads(raw)
        base, pipeline, from_env = dict(data.get("config") or {}), data.get("pipeline"), True
    elif args.config:
        base = TrainConfig.load(args.config).to_dict()
    for key in ("model", "dataset"):
        if getattr(args, key):
            base[key] = getattr(args, key)
    for flag, name in _FIELDS.items():
        value = getattr(args, flag)
        if value is not None:
            base[name] = value
    if args.status:
        base["statuses"] = [s.strip() for s in args.status.split(",") if s.strip()]
    for name in ("train_vision", "gradient_checkpointing"):
        if getattr(args, name):
            base[name] = True
    if not base.get("model"):
        raise TrainError("give the base model: --model NAME_OR_FOLDER")
    if not base.get("dataset"):
        raise TrainError("give the data: --dataset STORE.db | EXPORT_FOLDER | SARLANG-1M.json/.csv")
    config = TrainConfig.from_dict(base, where="arguments")
    if not from_env or args.pipeline:
        pipeline = pipeline_for(args.pipeline, config.dataset)
    return config, pipeline


def _printer(args):
    if getattr(args, "progress_jsonl", False):
        return emit_json_line
    quiet = getattr(args, "quiet", False)

    def line(event: dict) -> None:
        kind = event.get("event")
        if kind == "step" and not quiet:
            eta = event.get("eta_s")
            print(f"step {event['step']}/{event['max_steps']}  loss {event['loss']:.4f}  lr {event['lr']:.2e}  "
                  f"{event['samples_per_s']:.2f} samples/s" + (f"  ETA {eta:.0f} s" if eta is not None else ""),
                  file=sys.stderr)
        elif kind == "eval" and not quiet:
            print(f"step {event['step']}: eval loss {event['eval_loss']:.4f}", file=sys.stderr)
        elif kind == "progress" and not quiet:
            print(event.get("message", ""), file=sys.stderr)
        elif kind in ("done", "stopped"):
            print(json.dumps(event), file=sys.stdout)
    return line


def cmd_train(args) -> int:
    step = args.train_cmd
    if step in ("run", "resume"):
        return _run(args, step == "resume")
    if step == "preview":
        return _preview(args)
    if step == "demo":
        from ..train.demo import write_demo

        made = write_demo(args.out)
        print(f"model:   {made['model']}\ndataset: {made['dataset']}")
        return 0
    if step == "status":
        from ..train.runs import checkpoints, read_events, read_state

        state = read_state(args.run_dir)
        steps = [e for e in read_events(args.run_dir) if e.get("event") == "step"]
        state["last_loss"] = steps[-1]["loss"] if steps else None
        state["checkpoints"] = [c.name for c in checkpoints(args.run_dir)]
        print(json.dumps(state, indent=2))
        return 0
    if step == "stop":
        from ..train.runs import RunLock, request_stop

        if not RunLock.held(args.run_dir):
            raise TrainError(f"{args.run_dir}: no training process is running there")
        request_stop(args.run_dir)
        print(f"asked the run in {args.run_dir} to stop after its current step")
        return 0
    from ..services import training_after

    if step == "merge":
        print(training_after.merge_run(args.run_dir, args.out))
    elif step == "export-llamafactory":
        print(training_after.export_run(args.run_dir, args.out))
    elif step == "register":
        print(training_after.register_run(args.run_dir, args.name, registry=args.registry, replace=args.replace))
    return 0


def _run(args, resume: bool) -> int:
    from ..train.engine import train

    say = _printer(args)
    try:
        if resume:
            state = train(args.run_dir, resume=True, emit=say)
        else:
            config, pipeline = config_from_args(args)
            state = train(args.out, config, pipeline, emit=say)
    except SarlangError as exc:
        if args.progress_jsonl:
            emit_json_line({"event": "error", "message": str(exc)})
        raise
    end_distributed()
    return 0 if state.get("status") in ("finished", "stopped") else 1


def end_distributed() -> None:
    """Under torchrun, take the process group down while the interpreter is whole: left to the
    exit, Gloo's worker threads can abort a rank ("terminate called without an active exception",
    SIGABRT) after a run that went well. Only after a normal end: a rank that failed while others
    wait in a collective would hang here instead of exiting."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _preview(args) -> int:
    from ..services.training import preview_data

    config, pipeline = config_from_args(args)
    pv = preview_data(config, pipeline, count=args.count)
    print(pv.description)
    for s in pv.samples:
        print(f"\n--- {s.id}  ({s.tokens} tokens, {s.supervised_tokens} supervised"
              + (", OVER THE CUTOFF" if s.over_cutoff else "") + ")")
        for text, supervised in s.pieces:
            print(f"[[{text}]]" if supervised else text, end="")
        print()
    print("\n" + json.dumps(dataclasses.asdict(pv)["stats"]))
    for p in pv.problems[:10]:
        print(f"problem: {p}", file=sys.stderr)
    return 0
