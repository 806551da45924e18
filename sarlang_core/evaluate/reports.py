"""Report tables in the paper's layouts, from metrics.json files (Markdown and CSV).

Table 7 (captions): Caption | Model | Param | Train Strategy | BLEU_1..4 | ROUGE_L | CIDEr.
Tables 8/9 (VQA):   Model | Param | Train Strategy | Accuracy | one column per application.
Tables 10/11 (``compare``): the same metrics for several runs, a Pre ✗/✓ column when their
preprocessing differs, and a Δ row under each run against the first one.
Scores are stored as fractions and shown as percentages with two decimals (CIDEr x 100 too, as
the paper prints it).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

from ..atomic import write_text_atomic
from .charts import write_charts
from .metric_names import CAPTION_METRICS, CAPTION_ROWS, applications_in
from .run_config import BenchmarkError

DASH = "–"


@dataclass(frozen=True)
class Table:
    header: Tuple[str, ...]
    rows: Tuple[Tuple[str, ...], ...]
    notes: Tuple[str, ...] = ()

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        return "\n".join(lines + ([""] + [f"- {n}" for n in self.notes] if self.notes else [])) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.header)
        w.writerows(self.rows)
        return buf.getvalue()


def pct(value: Optional[float]) -> str:
    return DASH if value is None else f"{100.0 * value:.2f}"


def delta(value: Optional[float], base: Optional[float]) -> str:
    return DASH if value is None or base is None else f"{100.0 * (value - base):+.2f}"


def _run(m: dict) -> dict:
    return m.get("run", {})


def _ident(m: dict) -> Tuple[str, str, str]:
    r = _run(m)
    return r.get("model") or r.get("name") or "?", r.get("param") or DASH, r.get("train_strategy") or DASH


def _caption_values(m: dict, ctype: str) -> Optional[List[Optional[float]]]:
    block = m.get("caption", {}).get("by_type", {}).get(ctype)
    return None if block is None else [block.get(k) for k, _ in CAPTION_METRICS]


def _vqa_values(m: dict, apps: Sequence[str]) -> List[Optional[float]]:
    v = m.get("vqa", {})
    by_app = v.get("by_application", {})
    return [v.get("accuracy")] + [by_app.get(a, {}).get("accuracy") for a in apps]


def _task(metrics: Sequence[dict]) -> Optional[str]:   # None: old metrics without a task
    tasks = {_run(m).get("task") for m in metrics}
    if len(tasks) != 1:
        raise BenchmarkError(f"runs of different tasks cannot share a table ({', '.join(sorted(map(str, tasks)))})")
    return tasks.pop()


def caption_table(metrics: Sequence[dict]) -> Table:
    """Table 7: one row per run and caption kind (Complex = detailed, Concise)."""
    header = ("Caption", "Model", "Param", "Train Strategy") + tuple(label for _, label in CAPTION_METRICS)
    rows = []
    for ctype, label in CAPTION_ROWS:
        for m in metrics:
            values = _caption_values(m, ctype)
            if values is not None:
                rows.append((label, *_ident(m), *map(pct, values)))
    return Table(header, tuple(rows))


def vqa_table(metrics: Sequence[dict]) -> Table:
    """Tables 8/9: overall accuracy, then accuracy per application."""
    apps = applications_in(metrics)
    header = ("Model", "Param", "Train Strategy", "Accuracy") + tuple(a[0].upper() + a[1:] for a in apps)
    rows = tuple((*_ident(m), *map(pct, _vqa_values(m, apps))) for m in metrics)
    notes = []
    for m in metrics:
        v = m.get("vqa", {})
        if v.get("undecided"):
            notes.append(f"{_ident(m)[0]}: {v['undecided']} answer(s) undecided (no judge verdict) count as wrong; "
                         f"accuracy over decided answers {pct(v.get('accuracy_decided'))}")
    return Table(header, rows, tuple(notes))


def run_table(metrics: dict) -> Table:
    return caption_table([metrics]) if _run(metrics).get("task") == "caption" else vqa_table([metrics])


def compare_table(metrics: Sequence[dict]) -> Table:
    """Tables 10/11: runs side by side, Δ rows against the first run."""
    if len(metrics) < 2:
        raise BenchmarkError("a comparison needs at least two runs")
    task = _task(metrics)
    pipes = [_run(m).get("pipeline") for m in metrics]
    with_pre = any(p != pipes[0] for p in pipes)
    base_cols = ("Model", "Param") + (("Pre",) if with_pre else ()) + ("Train Strategy",)

    def ident(m: dict) -> tuple:
        model, param, strategy = _ident(m)
        pre = ("✓" if _run(m).get("pipeline") else "✗",) if with_pre else ()
        return (model, param, *pre, strategy)

    blank = ("",) * (len(base_cols) - 1)
    rows: List[tuple] = []
    if task == "caption":
        header = ("Caption",) + base_cols + tuple(label for _, label in CAPTION_METRICS)
        for ctype, label in CAPTION_ROWS:
            base = _caption_values(metrics[0], ctype)
            for i, m in enumerate(metrics):
                values = _caption_values(m, ctype)
                if values is None:
                    continue
                rows.append((label, *ident(m), *map(pct, values)))
                if i and base is not None:
                    rows.append((label, f"Δ vs {_ident(metrics[0])[0]}", *blank, *map(delta, values, base)))
    else:
        apps = applications_in(metrics)
        header = base_cols + ("Accuracy",) + tuple(a[0].upper() + a[1:] for a in apps)
        base = _vqa_values(metrics[0], apps)
        for i, m in enumerate(metrics):
            values = _vqa_values(m, apps)
            rows.append((*ident(m), *map(pct, values)))
            if i:
                rows.append((f"Δ vs {_ident(metrics[0])[0]}", *blank, *map(delta, values, base)))
    notes = tuple(f"{_run(m).get('name')}: {_run(m).get('pipeline') or 'images as stored'}"
                  for m in metrics) if with_pre else ()
    return Table(header, tuple(rows), notes)


# ------------------------------------------------------------------------------ files

def load_metrics(run_dir: Union[str, Path]) -> dict:
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchmarkError(f"{run_dir}: no metrics.json yet (finish the run: `bench resume {run_dir}`)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"{path}: unreadable ({exc})") from None


def _summary(m: dict) -> List[str]:
    r, s = _run(m), m.get("samples", {})
    lines = [f"# Benchmark run: {r.get('name', '?')}", "",
             f"- Task: {r.get('task')}; model {r.get('model')} ({r.get('train_strategy')}); "
             f"dataset {r.get('dataset')} (split {r.get('split')})",
             f"- Preprocessing: {r.get('pipeline') or 'none (images as stored)'}",
             f"- Samples: {s.get('predicted', 0)} predicted of {s.get('total', 0)}"
             + (f"; {s['failed']} failed (see errors.jsonl; `bench resume` retries them)" if s.get("failed") else "")]
    v = m.get("vqa")
    if v:
        lines.append(f"- Judge: {v.get('judge') or 'offline'} (mode {v.get('mode')}); "
                     f"{v.get('undecided', 0)} undecided")
        lines += [f"  - {p}" for p in v.get("judge_problems", [])[:20]]
        if v.get("counting_mae") is not None:
            lines.append(f"- Counting mean absolute error: {v['counting_mae']:.2f}")
    c = m.get("caption")
    if c:
        lines.append(f"- Caption tokens: {c.get('tokenize', 'whitespace')}")
    return lines + [""]


def write_run_report(run_dir: Union[str, Path], metrics: Optional[dict] = None) -> Tuple[Path, Path]:
    """report.md (summary + the paper-layout table) and report.csv in ``run_dir``."""
    run_dir = Path(run_dir)
    metrics = metrics if metrics is not None else load_metrics(run_dir)
    table = run_table(metrics)
    charts = sorted(p.name for p in (run_dir / "charts").glob("*.png")) if (run_dir / "charts").is_dir() else []
    md = "\n".join(_summary(metrics)) + "\n" + table.markdown()
    if charts:
        md += "\n" + "\n".join(f"![{c}](charts/{c})" for c in charts) + "\n"
    return write_text_atomic(run_dir / "report.md", md), write_text_atomic(run_dir / "report.csv", table.csv())


def compare(run_dirs: Sequence[Union[str, Path]], out_dir: Optional[Union[str, Path]] = None) -> Table:
    """The comparison table of ``run_dirs`` (first = baseline); with ``out_dir`` also
    comparison.md, comparison.csv and charts there."""
    metrics = [load_metrics(d) for d in run_dirs]
    table = compare_table(metrics)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pngs = write_charts(out / "charts", metrics)
        md = "# Comparison\n\n" + "\n".join(f"- {_run(m).get('name')}: {d}" for m, d in zip(metrics, run_dirs))
        md += "\n\n" + table.markdown() + "".join(f"\n![{p.name}](charts/{p.name})" for p in pngs) + "\n"
        write_text_atomic(out / "comparison.md", md)
        write_text_atomic(out / "comparison.csv", table.csv())
    return table
