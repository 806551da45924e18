"""`sarlang-cli bench run|resume|report|compare|status` (+ score-captions / score-vqa).

With ``--progress-jsonl`` stdout carries one JSON object per line, for the GUI (QProcess):
    {"event": "progress", "stage": "generate", "done": 12, "total": 400, "message": "...",
     "eta_s": 310.5, "per_sample_s": 0.81}
    {"event": "done", "run_dir": "...", "state": "complete", "done": 400, "total": 400, "failed": 0,
     "headline": {"accuracy": 0.41}}
    {"event": "error", "message": "..."}                      (then exit status 1)
Otherwise a progress bar on a terminal. SIGTERM stops a run cleanly (what is done stays; resume).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from ..errors import CancelledError, SarlangError
from ..evaluate.scoring import headline
from . import score
from .common import ProgressBar, UsageParser, emit_json_line


def add_parsers(sub) -> None:
    bench = sub.add_parser("bench", help="benchmark runs: generate, score and report as in the paper")
    bsub = bench.add_subparsers(dest="bench_cmd", metavar="STEP", parser_class=UsageParser)
    bsub.required = True
    run = bsub.add_parser("run", help="start a benchmark run into a new folder")
    run.add_argument("--config", metavar="RUN.json", help="a saved RunConfig (the flags below override it)")
    run.add_argument("--config-json", help=argparse.SUPPRESS)   # a RunConfig inline
    run.add_argument("--config-env", help=argparse.SUPPRESS)    # the environment variable holding it (the GUI's way)
    run.add_argument("--name")
    run.add_argument("--task", choices=("caption", "vqa"))
    run.add_argument("--model", help="model folder or registered name (local)")
    run.add_argument("--adapter", help="LoRA adapter folder (local)")
    run.add_argument("--endpoint", help="OpenAI-compatible base URL: run against a server")
    run.add_argument("--served-model", help="the model name the server serves")
    run.add_argument("--label", help="model name shown in reports")
    run.add_argument("--param", help="parameter count shown in reports, e.g. 3B")
    run.add_argument("--dataset", help="curation store (.db) or SARLANG-1M JSON / CSV")
    run.add_argument("--images", help="image root (default: beside the dataset)")
    run.add_argument("--split", choices=("train", "test", "all"))
    run.add_argument("--types", help="comma-separated item types (default: all of the task)")
    run.add_argument("--status", help="comma-separated review statuses (stores)")
    run.add_argument("--limit", type=int)
    pre = run.add_mutually_exclusive_group()
    pre.add_argument("--pipeline", metavar="FILE.json|paper", help="preprocess images ('paper': the paper's chain)")
    pre.add_argument("--no-preprocess", action="store_true", help="images as stored (the default)")
    run.add_argument("--judge", help="'offline' or the judge's OpenAI-compatible base URL")
    run.add_argument("--judge-model")
    run.add_argument("--mode", choices=("paper", "strict"), help="VQA matching rules")
    run.add_argument("--judge-prompt", choices=("released", "paper-text"),
                     help="released: the authors' Evaluate_VQA.py request (default); paper-text: the paper's wording")
    run.add_argument("--judge-timeout", type=float, metavar="S", help="seconds per judge request (default 30)")
    run.add_argument("--request-timeout", type=float, metavar="S",
                     help="seconds per request to the model server (default 60)")
    run.add_argument("--batch-size", metavar="N|auto",
                     help="samples per generate call for a local model: 1..256, or auto (default) = "
                          "measured against the free GPU memory (4 on the CPU)")
    run.add_argument("--concurrency", type=int)
    run.add_argument("--max-new-tokens", type=int)
    run.add_argument("--out", required=True, metavar="RUNDIR", help="the new run folder")
    res = bsub.add_parser("resume", help="continue a stopped run (and score it)")
    res.add_argument("run_dir")
    rep = bsub.add_parser("report", help="score a run again (judge cache kept) and rewrite its report")
    rep.add_argument("run_dir")
    rep.add_argument("--no-rescore", action="store_true", help="only rewrite the tables from metrics.json")
    st = bsub.add_parser("status", help="how far a run is, as JSON")
    st.add_argument("run_dir")
    cmp_ = bsub.add_parser("compare", help="compare runs (first = baseline) as in the paper's Tables 10/11")
    cmp_.add_argument("run_dirs", nargs="+")
    cmp_.add_argument("--out", metavar="DIR", help="write comparison.md, comparison.csv and charts here")
    cmp_.add_argument("--csv", action="store_true", help="print CSV instead of Markdown")
    for p in (run, res, rep):
        p.add_argument("--progress-jsonl", action="store_true", help="JSON-lines progress on stdout (for the GUI)")
        p.add_argument("--quiet", action="store_true", help="no progress bar (the model loading's included)")
    score.add_parsers(bsub)
    bench.set_defaults(handler=cmd_bench)


def progress_event(p) -> dict:
    return {"event": "progress", "stage": p.stage, "done": p.done, "total": p.total, "message": p.message,
            "eta_s": getattr(p, "eta_s", None), "per_sample_s": getattr(p, "per_sample_s", None)}


def _config_from_args(args):
    from dataclasses import replace

    from ..evaluate.run_config import BackendSpec, BenchmarkError, DatasetSpec, JudgeSpec, PromptSpec, RunConfig
    from ..preprocess.pipeline import Pipeline
    from ..vlm.backend import GenerationConfig

    inline, flag = args.config_json, "--config-json"
    if args.config_env:
        inline, flag = os.environ.pop(args.config_env, None), f"--config-env {args.config_env}"
        if inline is None:
            raise BenchmarkError(f"{flag}: the environment variable {args.config_env} is not set")
    if inline:
        try:
            base = RunConfig.from_dict(json.loads(inline))
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{flag} is not JSON ({exc})") from None
    elif args.config:
        base = RunConfig.load(args.config)
    else:
        if not args.dataset:
            raise BenchmarkError("give --config RUN.json, or at least --dataset (and --model or --endpoint)")
        base = None

    def pick(value, default):
        return default if value is None else value

    b = base.backend if base else BackendSpec()
    endpoint = pick(args.endpoint, b.endpoint)
    backend = BackendSpec(kind="openai" if endpoint else "local",
                          model=pick(args.served_model, pick(args.model, b.model)) or "",
                          adapter=pick(args.adapter, b.adapter), endpoint=endpoint,
                          label=pick(args.label, b.label), param=pick(args.param, b.param),
                          timeout=pick(args.request_timeout, b.timeout))
    d = base.dataset if base else None
    split = lambda text: tuple(t.strip() for t in text.split(",") if t.strip())  # noqa: E731
    dataset = DatasetSpec(source=pick(args.dataset, d.source if d else ""),
                          images=pick(args.images, d.images if d else None),
                          split=pick(args.split, d.split if d else "test"),
                          types=split(args.types) if args.types is not None else (d.types if d else ()),
                          status=split(args.status) if args.status is not None else (d.status if d else ()),
                          limit=pick(args.limit, d.limit if d else None))
    pipeline = base.pipeline if base else None
    if args.no_preprocess:
        pipeline = None
    elif args.pipeline:
        pipeline = (Pipeline() if args.pipeline == "paper" else Pipeline.load(args.pipeline)).to_dict()
    j = base.judge if base else JudgeSpec()
    judge_url = None if args.judge == "offline" else pick(args.judge, j.endpoint)
    judge = replace(j, endpoint=judge_url, model=pick(args.judge_model, j.model), mode=pick(args.mode, j.mode),
                    prompt=pick(args.judge_prompt, j.prompt), timeout=pick(args.judge_timeout, j.timeout))
    gen = base.generation if base else GenerationConfig(max_new_tokens=128)
    if args.max_new_tokens is not None:
        gen = replace(gen, max_new_tokens=args.max_new_tokens)
    return RunConfig(name=pick(args.name, base.name if base else _default_name(args.out)),
                     task=pick(args.task, base.task if base else "vqa"), backend=backend, dataset=dataset,
                     pipeline=pipeline, prompts=base.prompts if base else PromptSpec(), generation=gen, judge=judge,
                     batch_size=pick(args.batch_size, base.batch_size if base else "auto"),
                     concurrency=pick(args.concurrency, base.concurrency if base else 4))


def _default_name(out: str) -> str:
    from pathlib import Path

    return Path(out).name or "run"


def _execute(run, args) -> int:
    from ..progress import CancelToken

    token = CancelToken()
    previous = signal.signal(signal.SIGTERM, lambda *_: token.cancel())
    try:
        if args.progress_jsonl:
            status = run.execute(progress=lambda p: emit_json_line(progress_event(p)), cancel=token)
        else:
            with ProgressBar(args.quiet) as bar:
                status = run.execute(progress=bar, cancel=token)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _finish(run, status, args)


def _finish(run, status, args) -> int:
    metrics = run.metrics()
    failure = ((metrics or {}).get("vqa") or {}).get("judge_failure")
    if args.progress_jsonl:
        emit_json_line({"event": "done", "run_dir": str(run.dir), **status.to_dict(),
                        "headline": headline(metrics)})
        if failure:   # the scores are written; the user still has to know they lack the judge
            emit_json_line({"event": "error", "message": failure})
    else:
        print(f"{run.dir}: {status.state}, {status.done}/{status.total} predicted"
              + (f", {status.failed} failed (resume retries them)" if status.failed else ""), file=sys.stderr)
        if (run.dir / "report.md").is_file():
            print((run.dir / "report.md").read_text(encoding="utf-8"))
    if failure:
        print(f"sarlang-cli: {failure}", file=sys.stderr)
        return 1
    return 0


def silence_library_bars() -> None:
    """No progress bar from any library (transformers' model loading, huggingface_hub, anything on
    tqdm): set before they are imported, which happens when the run loads its model."""
    import os

    os.environ["TQDM_DISABLE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "transformers" in sys.modules:   # imported already (an embedding caller): switch its bars off too
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _dispatch(args) -> int:
    from ..evaluate.runner import BenchmarkRun

    step = args.bench_cmd
    if getattr(args, "quiet", False) or getattr(args, "progress_jsonl", False):
        silence_library_bars()   # --quiet means no bar at all; in JSON-lines mode stderr is for errors
    if step == "run":
        return _execute(BenchmarkRun.create(args.out, _config_from_args(args)), args)
    if step == "resume":
        return _execute(BenchmarkRun.open(args.run_dir), args)
    if step == "report":
        from ..evaluate.reports import write_run_report

        run = BenchmarkRun.open(args.run_dir)
        if args.no_rescore:
            write_run_report(run.dir)
        else:
            progress = (lambda p: emit_json_line(progress_event(p))) if args.progress_jsonl else None
            run.score(progress=progress)
        return _finish(run, run.status(), args)
    if step == "status":
        run = BenchmarkRun.open(args.run_dir)
        print(json.dumps({"run_dir": str(run.dir), **run.status().to_dict(), "headline": headline(run.metrics())}))
        return 0
    if step == "compare":
        from ..evaluate.reports import compare

        table = compare(args.run_dirs, args.out)
        print(table.csv() if args.csv else table.markdown(), end="")
        return 0
    return score.cmd_score_captions(args) if step == "score-captions" else score.cmd_score_vqa(args)


def cmd_bench(args) -> int:
    """Run one `bench` step. In JSON-lines mode errors are also an ``error`` event on stdout."""
    try:
        return _dispatch(args)
    except CancelledError:
        if getattr(args, "progress_jsonl", False):
            emit_json_line({"event": "cancelled", "message": "stopped; `bench resume` continues the run"})
        print("sarlang-cli: stopped; `sarlang-cli bench resume` continues the run", file=sys.stderr)
        return 130
    except SarlangError as exc:
        if getattr(args, "progress_jsonl", False):
            emit_json_line({"event": "error", "message": str(exc)})
        raise
