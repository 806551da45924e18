"""Score a run's predictions with the metrics layer and shape metrics.json.

Captions: BLEU-1..4, ROUGE_L and CIDEr per caption kind (the paper's Complex / Concise rows) and
over all; each sample's own six scores go to caption_scores.jsonl (one line per predicted sample,
the same engine and tokenisation as the "all" figures, so CIDEr's document frequencies come from
the whole run; a per-sample BLEU is that sentence's BLEU, not a share of the corpus BLEU).
VQA: the paper's accuracy (rules, then the LLM judge for what the rules leave open), per
application and type; verdicts go to verdicts.jsonl, judge replies to an SQLite cache in the
run folder, so a re-score after a crash asks the judge only what it has not answered yet. A judge
that times out or answers nonsense leaves that answer undecided and says so, line by line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Optional

from ..atomic import write_text_atomic
from ..progress import CancelToken, ProgressCallback, report
from ..urls import redact_url
from .run_config import CAPTION_TYPES, RunConfig

SCHEMA = "sarlang.bench-metrics/1"
CAPTION_SCORES = "caption_scores.jsonl"
JUDGE_CACHE = "judge-cache.sqlite"
MAX_LISTED_PROBLEMS = 100


def run_identity(config: RunConfig, manifest: Optional[dict] = None) -> dict:
    """The columns a report shows for a run: model, parameters, training strategy, preprocessing."""
    b = config.backend
    model = b.label or (Path(b.model).name if b.kind == "local" and b.model else b.model) or "default model"
    param = b.param or _param_from_name(model)
    pipe = config.pipeline_object()
    return {"name": config.name, "task": config.task, "model": model, "param": param,
            "train_strategy": "LoRA Finetune" if b.fine_tuned else "Without Finetune",
            "adapter": b.adapter, "backend": b.kind, "endpoint": redact_url(b.endpoint) or None,
            "pipeline": pipe.describe() if pipe is not None else None,
            "dataset": config.dataset_spec.source, "split": config.dataset_spec.split,
            "types": list(config.types), "created": (manifest or {}).get("created")}


def _param_from_name(name: str) -> Optional[str]:
    m = re.search(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])", name)
    return f"{m.group(1)}{m.group(2).upper()}" if m else None


def score_run(run, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> dict:
    samples = run.sample_list()
    preds = run.predictions()
    status = run.status()
    predicted = [s for s in samples if s.id in preds]
    metrics = {"schema": SCHEMA, "run": run_identity(run.config, run.manifest()),
               "samples": {"total": len(samples), "predicted": len(predicted), "failed": status.failed}}
    if not predicted:
        return metrics
    if run.config.task == "caption":
        metrics["caption"] = _captions(run, predicted, preds, progress)
    else:
        metrics["vqa"] = _vqa(run, predicted, preds, progress, cancel)
    return metrics


def _captions(run, predicted, preds, progress) -> dict:
    from .caption_metrics import CAPTION_KEYS, score_captions_detailed

    tokenize = "whitespace"
    report(progress, "score", 0, 1, "caption metrics")
    out: Dict[str, Any] = {"tokenize": tokenize, "by_type": {}}
    groups = [(t, [s for s in predicted if s.type == t]) for t in CAPTION_TYPES]
    for name, group in groups + [("all", predicted)]:
        if not group:
            continue
        detailed = score_captions_detailed([preds[s.id]["prediction"] or "" for s in group],
                                           [list(s.references) for s in group], tokenize=tokenize)
        scores = {k: float(v) for k, v in detailed.corpus.items()}
        scores["n"] = len(group)
        if name == "all":
            out["all"] = scores
            lines = [json.dumps({"id": s.id, "type": s.type, **{k: each[k] for k in CAPTION_KEYS}},
                                ensure_ascii=False) + "\n" for s, each in zip(group, detailed.per_sample)]
            write_text_atomic(run.dir / CAPTION_SCORES, "".join(lines))
        else:
            out["by_type"][name] = scores
    report(progress, "score", 1, 1, "caption metrics")
    return out


def _vqa(run, predicted, preds, progress, cancel) -> dict:
    from .judge import LLMJudge, VerdictCache
    from .vqa_metrics import VqaSample, judge_failure_line, score_vqa

    spec = run.config.judge
    cache = judge = None
    if spec.endpoint:
        cache = VerdictCache(run.dir / JUDGE_CACHE)
        judge = LLMJudge(spec.endpoint, spec.model, timeout=spec.timeout, max_retries=spec.max_retries, cache=cache,
                         prompt=spec.prompt)
    samples = [VqaSample(s.id, s.question, s.references[0] if s.references else "",
                         preds[s.id]["prediction"] or "", s.type) for s in predicted]
    try:
        scores = score_vqa(samples, mode=spec.mode, judge=judge, concurrency=spec.concurrency,
                           progress=progress, cancel=cancel)
    finally:
        if cache is not None:
            cache.close()
    lines, problems = [], []
    for v in scores.verdicts:
        lines.append(json.dumps({"id": v.id, "correct": v.correct, "how": v.how, "reply": v.reply,
                                 "error": v.error}, ensure_ascii=False) + "\n")
        if v.how == "judge-error" or (v.correct is None and judge is not None):
            problems.append(f"{v.id}: {v.error or 'no verdict'}")
    write_text_atomic(run.dir / "verdicts.jsonl", "".join(lines))
    out = scores.to_dict()
    out["judge"] = (f"{spec.model} at {judge.endpoint}" if judge is not None else None)
    out["judge_failure"] = judge_failure_line(scores, judge.endpoint) if judge is not None else None
    out["judge_problem_count"] = len(problems)
    out["judge_problems"] = problems[:MAX_LISTED_PROBLEMS]
    if judge is None and scores.undecided:
        out["judge_problems"] = [f"{scores.undecided} answer(s) need the judge, which is offline: "
                                 "they stay undecided (count as wrong in accuracy)"]
    return out


HEADLINE_KEYS = ("Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr")


def headline(metrics: Optional[dict]) -> dict:
    if not metrics:
        return {}
    if metrics.get("vqa"):
        v = metrics["vqa"]
        return {k: v.get(k) for k in ("accuracy", "accuracy_decided", "undecided")}
    return {k: metrics.get("caption", {}).get("all", {}).get(k) for k in HEADLINE_KEYS}
