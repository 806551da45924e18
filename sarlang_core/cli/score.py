"""``sarlang-cli bench score-captions`` and ``bench score-vqa``: score a LLaMA-Factory
``generated_predictions.jsonl`` and print the figures as JSON on stdout (problems on stderr).

    sarlang-cli bench score-vqa PRED.jsonl --mode strict --judge offline
"""

from __future__ import annotations

import json
import sys
from typing import List

from ..errors import SarlangError

__all__ = ["add_parsers", "cmd_score_captions", "cmd_score_vqa"]

MAX_SHOWN = 20


def add_parsers(bench_subparsers) -> None:
    """Add ``score-captions`` and ``score-vqa`` to the ``bench`` sub-command group."""
    p = bench_subparsers.add_parser("score-captions", help="BLEU-1..4, ROUGE_L, CIDEr of a predictions file")
    p.add_argument("predictions", help="generated_predictions.jsonl (label = reference, predict = caption)")
    p.add_argument("--tokenize", choices=("whitespace", "ptb"), default="whitespace",
                   help="whitespace = the authors' way (default); ptb = COCO's lower-case, no punctuation")
    p.add_argument("--per-sample", metavar="OUT.jsonl", help="also write one line of scores per sample")
    p.add_argument("--engine", choices=("fast", "reference"), default="fast",
                   help="fast = our array implementation (default); reference = pycocoevalcap's "
                        "scorer classes (same figures, several times slower)")
    q = bench_subparsers.add_parser("score-vqa", help="VQA accuracy of a predictions file (paper's rules + judge)")
    q.add_argument("predictions", help="generated_predictions.jsonl (label, predict, question or prompt, type)")
    q.add_argument("--mode", choices=("paper", "strict"), default="paper")
    q.add_argument("--judge", default="offline",
                   help="'offline' (rules only; open answers stay undecided) or an OpenAI-compatible base URL")
    q.add_argument("--judge-model", default="gpt-4o-mini")
    q.add_argument("--judge-prompt", choices=("released", "paper-text"), default="released",
                   help="released: the request the authors' Evaluate_VQA.py sends (default); "
                        "paper-text: the wording printed in the paper")
    q.add_argument("--judge-timeout", type=float, default=30.0, metavar="S", help="seconds per judge request")
    q.add_argument("--cache", metavar="FILE", help="verdict cache (default: the user cache folder)")
    q.add_argument("--concurrency", type=int, default=8)


def _report_problems(problems: List[str], skipped: int) -> None:
    if skipped:
        print(f"{skipped} lines skipped", file=sys.stderr)
    for msg in problems[:MAX_SHOWN]:
        print(msg, file=sys.stderr)
    if len(problems) > MAX_SHOWN:
        print(f"... and {len(problems) - MAX_SHOWN} more", file=sys.stderr)


def cmd_score_captions(args) -> int:
    from ..evaluate.caption_metrics import score_captions_detailed
    from ..evaluate.predictions import read_predictions
    pf = read_predictions(args.predictions)
    _report_problems(pf.problems, pf.skipped)
    scores = score_captions_detailed([r.predict for r in pf.records], [r.label for r in pf.records],
                                     tokenize=args.tokenize, engine=getattr(args, "engine", "fast"))
    if args.per_sample:
        try:
            with open(args.per_sample, "w", encoding="utf-8") as f:
                for rec, row in zip(pf.records, scores.per_sample):
                    f.write(json.dumps({"id": rec.id, "line": rec.line, **row}) + "\n")
        except OSError as exc:
            raise SarlangError(f"{args.per_sample}: cannot write ({exc.strerror or exc})") from None
    out = dict(scores.corpus, n=len(pf.records), skipped=pf.skipped, tokenize=args.tokenize,
               engine=getattr(args, "engine", "fast"))
    print(json.dumps(out, indent=2))
    return 0


def cmd_score_vqa(args) -> int:
    from ..evaluate.predictions import read_predictions
    from ..evaluate.vqa_metrics import VqaSample, judge_failure_line, score_vqa
    pf = read_predictions(args.predictions)
    _report_problems(pf.problems, pf.skipped)
    judge = None
    if args.judge and args.judge != "offline":
        from ..evaluate.judge import LLMJudge, VerdictCache, default_cache_path
        cache = VerdictCache(args.cache or default_cache_path())
        if not 1.0 <= args.judge_timeout <= 600.0:
            raise SarlangError(f"--judge-timeout must be 1..600 s, got {args.judge_timeout:g}")
        judge = LLMJudge(args.judge, args.judge_model, cache=cache, timeout=args.judge_timeout,
                         prompt=args.judge_prompt)
    samples = [VqaSample(r.id, r.question, r.label, r.predict, r.type) for r in pf.records]
    scores = score_vqa(samples, mode=args.mode, judge=judge, concurrency=max(1, args.concurrency))
    out = scores.to_dict()
    out["skipped"] = pf.skipped
    print(json.dumps(out, indent=2))
    if judge is not None and (line := judge_failure_line(scores, judge.endpoint)):
        print(f"sarlang-cli: {line}", file=sys.stderr)
        return 1
    if judge is None and scores.undecided:
        print(f"{scores.undecided} answer(s) need the judge, which is offline: they stay undecided "
              "(counted as wrong)", file=sys.stderr)
    return 0
