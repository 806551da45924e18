"""Benchmark runs for the GUI: list run folders, read one, build the `sarlang-cli bench ...`
command that runs it out of process (QProcess), read its JSON-lines progress, compare runs.

    launch = run_command(config, "runs/qwen3b-vqa")      # QProcess.start(program, args), env added
    event = parse_event(line)                                   # each stdout line
    rows = list_runs("runs")
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from ..evaluate.applications import application_of
from ..evaluate.metric_names import CAPTION_METRICS, CAPTION_ROWS, VQA_APPLICATIONS, applications_in
from ..evaluate.run_config import BenchmarkError, RunConfig
from ..evaluate.runner import CONFIG, BenchmarkRun, RunStatus
from ..urls import redact_url

# what the results views show, in the paper's order (re-exported for the GUI)
__all__ = ["CAPTION_METRICS", "CAPTION_ROWS", "VQA_APPLICATIONS", "applications_in", "RunSummary", "list_runs",
           "open_run", "run_samples", "run_metrics", "run_config", "cli_program", "run_command", "resume_command",
           "Launch", "CONFIG_ENV",
           "report_command", "parse_event", "compare_runs", "redact_url"]

PathLike = Union[str, Path]
EVENTS = ("progress", "done", "error", "cancelled")


@dataclass(frozen=True)
class RunSummary:
    run_dir: Path
    name: str
    task: str
    model: str
    train_strategy: str
    preprocessed: bool
    status: RunStatus
    headline: dict          # accuracy... (VQA) or Bleu_1, Bleu_4, ROUGE_L, CIDEr (captions); {} before scoring


def list_runs(folder: PathLike) -> List[RunSummary]:
    """The run folders directly inside ``folder`` (newest first); unreadable ones are skipped."""
    from ..evaluate.scoring import headline, run_identity

    root = Path(folder)
    out: List[RunSummary] = []
    if not root.is_dir():
        return out
    for d in sorted((p for p in root.iterdir() if (p / CONFIG).is_file()),
                    key=lambda p: (p / CONFIG).stat().st_mtime, reverse=True):
        try:
            run = BenchmarkRun.open(d)
            ident = run_identity(run.config)
            out.append(RunSummary(d, run.config.name, run.config.task, ident["model"], ident["train_strategy"],
                                  run.config.pipeline is not None, run.status(), headline(run.metrics())))
        except BenchmarkError:
            continue
    return out


def open_run(run_dir: PathLike) -> BenchmarkRun:
    """The run (config, status(), samples(), metrics(), sample_list()); BenchmarkError if not a run."""
    return BenchmarkRun.open(run_dir)


def run_samples(run_dir: PathLike) -> List[dict]:
    """Rows for the per-sample browser: id, image, question, references, type, prediction, error,
    verdict ({"correct", "how", "reply", "error"} or None; VQA), scores (caption runs: that sample's
    {"Bleu_1".."Bleu_4", "ROUGE_L", "CIDEr"} as fractions from caption_scores.jsonl, or None before
    scoring; always None for VQA), application (the paper's application of its type)."""
    rows = BenchmarkRun.open(run_dir).samples()
    for r in rows:
        r["application"] = application_of(r.get("type"))
    return rows


def run_metrics(run_dir: PathLike) -> Optional[dict]:
    return BenchmarkRun.open(run_dir).metrics()


def run_config(run_dir: PathLike) -> RunConfig:
    return BenchmarkRun.open(run_dir).config


def cli_program() -> Tuple[str, List[str]]:
    """(program, leading args) that start `sarlang-cli`: this interpreter from a source or pip
    install, the `sarlang-cli` program beside the GUI in the frozen build (as app/cli_process)."""
    if getattr(sys, "frozen", False):
        return str(Path(sys.executable).with_name("sarlang-cli.exe" if os.name == "nt" else "sarlang-cli")), []
    return sys.executable, ["-m", "sarlang_core.cli"]


class Launch(NamedTuple):
    """How to start a `sarlang-cli` run process: QProcess.start(program, args) with ``env`` added."""
    program: str
    args: List[str]
    env: Dict[str, str]


CONFIG_ENV = "SARLANG_RUN_CONFIG"   # the run's config, credentials included, for the run process alone


def run_command(config: RunConfig, run_dir: PathLike) -> Launch:
    """Start a new run of ``config`` into ``run_dir`` with JSON-lines progress. The config travels
    in the process's environment, not on its command line: the command line of every process is
    readable by every local user (ps), its environment only by the user."""
    program, lead = cli_program()
    env = {CONFIG_ENV: json.dumps(config.to_dict(secrets=True), ensure_ascii=False)}
    return Launch(program, lead + ["bench", "run", "--config-env", CONFIG_ENV, "--out", str(run_dir),
                                   "--progress-jsonl"], env)


def resume_command(run_dir: PathLike) -> Launch:
    program, lead = cli_program()
    return Launch(program, lead + ["bench", "resume", str(run_dir), "--progress-jsonl"], {})


def report_command(run_dir: PathLike) -> Tuple[str, List[str]]:
    program, lead = cli_program()
    return program, lead + ["bench", "report", str(run_dir), "--progress-jsonl"]


def parse_event(line: Union[str, bytes]) -> Optional[dict]:
    """One stdout line of a `--progress-jsonl` run as a dict with an "event" key, or None for
    anything else (a stray print from a library)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) and obj.get("event") in EVENTS else None


def compare_runs(run_dirs: Sequence[PathLike], out_dir: Optional[PathLike] = None):
    """The Tables 10/11 comparison (``Table`` with .markdown() / .csv() / header / rows); with
    ``out_dir``, comparison.md, comparison.csv and charts are written there too."""
    from ..evaluate.reports import compare

    return compare(run_dirs, out_dir)
