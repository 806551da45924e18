"""VQA accuracy as the paper reports it, with per-application and per-type breakdowns.

``accuracy`` follows the paper: matches / all questions, so an answer nobody could decide
(no judge, an unreadable or failed judge reply) counts as not matching; ``accuracy_decided``
leaves those out. In ``mode="paper"`` the rule and the judge see lower-cased ground truth and
prediction, as in VRSBench's script; ``mode="strict"`` uses ``strict_prejudge`` and the original text.
Ground truth and prediction lose surrounding whitespace first (LLaMA-Factory's labels end in "\n",
which no rule would match); a sample without a type gets the type its question's form shows.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence

from ..errors import SarlangError
from ..progress import CancelToken, ProgressCallback, check, report
from .applications import classify, infer_type
from .vqa_rules import paper_prejudge, parse_number, strict_prejudge

__all__ = ["VqaSample", "VqaVerdict", "VqaScores", "score_vqa", "judge_failure_line", "MODES"]

MODES = ("paper", "strict")
GIVE_UP_AFTER = 8   # endpoint failures in a row, with no verdict yet, after which the judge is not asked again


@dataclass(frozen=True)
class VqaSample:
    id: str
    question: str
    label: str
    predict: str
    type: str = ""
    application: str = ""       # filled from ``type`` when empty


@dataclass(frozen=True)
class VqaVerdict:
    id: str
    correct: Optional[bool]
    how: str                    # rule | judge | cached | undecided | judge-error
    reply: str = ""
    error: Optional[str] = None
    unreachable: bool = False   # the judge's endpoint failed (down, timed out, refused the key...)


@dataclass
class VqaScores:
    mode: str
    n: int
    correct: int
    undecided: int
    verdicts: List[VqaVerdict]
    by_application: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    by_type: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    counting_mae: Optional[float] = None
    counting_n: int = 0
    counting_unparsed: int = 0
    judge_model: Optional[str] = None
    judge_calls: int = 0
    cache_hits: int = 0
    types_inferred: int = 0     # samples without a type, typed from their question
    judge_failed: int = 0       # answers left undecided because the judge's endpoint failed
    judge_error: Optional[str] = None   # the first such failure, as the endpoint layer worded it

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def accuracy_decided(self) -> Optional[float]:
        decided = self.n - self.undecided
        return self.correct / decided if decided else None

    def to_dict(self, *, per_sample: bool = False) -> Dict[str, Any]:
        out = {"mode": self.mode, "n": self.n, "correct": self.correct, "accuracy": self.accuracy,
               "accuracy_decided": self.accuracy_decided, "undecided": self.undecided,
               "by_application": self.by_application, "by_type": self.by_type,
               "counting_mae": self.counting_mae, "counting_n": self.counting_n,
               "counting_unparsed": self.counting_unparsed, "judge_model": self.judge_model,
               "judge_calls": self.judge_calls, "cache_hits": self.cache_hits,
               "types_inferred": self.types_inferred, "judge_failed": self.judge_failed,
               "judge_error": self.judge_error}
        if per_sample:
            out["samples"] = [{"id": v.id, "correct": v.correct, "how": v.how, "reply": v.reply, "error": v.error}
                              for v in self.verdicts]
        return out


def _breakdown(keys: Sequence[str], verdicts: Sequence[VqaVerdict]) -> Dict[str, Dict[str, Any]]:
    table: Dict[str, Dict[str, Any]] = {}
    for key, v in zip(keys, verdicts):
        row = table.setdefault(key, {"n": 0, "correct": 0, "undecided": 0})
        row["n"] += 1
        row["correct"] += v.correct is True
        row["undecided"] += v.correct is None
    for row in table.values():
        row["accuracy"] = row["correct"] / row["n"]
    return dict(sorted(table.items()))


def _judge_one(judge, sample: VqaSample, lower: bool, cancel) -> VqaVerdict:
    question, label, predict = sample.question, sample.label, sample.predict
    if lower:   # as the authors' script: the released prompt lower-cases the question too
        label, predict = label.lower(), predict.lower()
        question = question.lower() if getattr(judge, "prompt", "") == "released" else question
    v = judge.judge(question, label, predict, cancel=cancel)
    if v.verdict is None:
        return VqaVerdict(sample.id, None, "judge-error", v.reply, v.error, bool(getattr(v, "unreachable", False)))
    return VqaVerdict(sample.id, v.verdict == 1, "cached" if v.cached else "judge", v.reply)


def judge_failure_line(scores: "VqaScores", endpoint: str) -> Optional[str]:
    """One line for the user when the judge's endpoint failed (None when it did not)."""
    if not scores.judge_failed:
        return None
    return (f"the judge at {endpoint} failed ({scores.judge_error}): {scores.judge_failed} answer(s) left undecided "
            "(counted as wrong). Fix the judge URL or key and score again, or judge offline (--judge offline)")


def score_vqa(samples: Sequence[VqaSample], *, mode: str = "paper", judge=None, concurrency: int = 8,
              progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> VqaScores:
    """Score ``samples``: rules first, then ``judge`` (an ``LLMJudge``) for what the rules leave open."""
    if mode not in MODES:
        raise SarlangError(f"VQA scoring mode must be one of {', '.join(MODES)}, got {mode!r}")
    if concurrency < 1:
        raise SarlangError("concurrency must be at least 1")
    rule = paper_prejudge if mode == "paper" else strict_prejudge
    samples = [replace(s, label=str(s.label).strip(), predict=str(s.predict).strip()) for s in samples]
    total = len(samples)
    verdicts: List[Optional[VqaVerdict]] = [None] * total
    pending: List[int] = []
    for i, s in enumerate(samples):
        if i % 4096 == 0:
            check(cancel)
        r = rule(s.question, s.label, s.predict)
        if r is None:
            pending.append(i)
            verdicts[i] = VqaVerdict(s.id, None, "undecided")
        else:
            verdicts[i] = VqaVerdict(s.id, r, "rule")
    done = total - len(pending)
    report(progress, "rules", done, total, f"{done:,} of {total:,} decided by rule")
    calls = hits = failed = 0
    first_error: Optional[str] = None
    ok_any, in_row = False, 0
    if judge is not None and pending:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="judge") as pool:
            queue = iter(pending)
            running: Dict[Future, int] = {}
            try:
                while True:
                    while len(running) < concurrency * 2:   # bounded: never the whole set in memory
                        if not ok_any and in_row >= GIVE_UP_AFTER:   # a dead judge: stop asking it
                            break
                        nxt = next(queue, None)
                        if nxt is None:
                            break
                        check(cancel)
                        running[pool.submit(_judge_one, judge, samples[nxt], mode == "paper", cancel)] = nxt
                    if not running:
                        break
                    finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                    check(cancel)
                    for fut in finished:
                        i = running.pop(fut)
                        verdict: VqaVerdict = fut.result()
                        verdicts[i] = verdict
                        calls += verdict.how == "judge" or verdict.how == "judge-error"
                        hits += verdict.how == "cached"
                        if verdict.unreachable:
                            failed, in_row = failed + 1, in_row + 1
                            first_error = first_error or verdict.error
                        elif verdict.correct is not None:
                            ok_any, in_row = True, 0
                        done += 1
                        report(progress, "judge", done, total, f"{done:,} of {total:,} scored")
            finally:
                for fut in running:
                    fut.cancel()
        for i in queue:   # never asked: the judge failed every time so far
            verdicts[i] = VqaVerdict(samples[i].id, None, "judge-error", "", f"not asked: {first_error}", True)
            failed += 1
    final: List[VqaVerdict] = verdicts  # type: ignore[assignment]
    apps, types, inferred = [], [], 0
    for s in samples:
        given = s.type.strip()
        if not given and (guess := infer_type(s.question)):
            given, inferred = guess, inferred + 1
        app, qtype = classify(given)
        apps.append(s.application or app)
        types.append(qtype)
    scores = VqaScores(mode=mode, n=total, correct=sum(v.correct is True for v in final),
                       undecided=sum(v.correct is None for v in final), verdicts=final,
                       by_application=_breakdown(apps, final), by_type=_breakdown(types, final),
                       judge_model=getattr(judge, "model", None), judge_calls=calls, cache_hits=hits,
                       types_inferred=inferred, judge_failed=failed, judge_error=first_error)
    _counting(scores, samples, types)
    report(progress, "done", total, total, f"accuracy {scores.accuracy:.4f}")
    return scores


def _counting(scores: VqaScores, samples: Sequence[VqaSample], types: Sequence[str]) -> None:
    """Mean absolute error over counting items whose label and prediction both hold a number."""
    errors, unparsed = [], 0
    for s, qtype in zip(samples, types):
        if qtype != "counting":
            continue
        truth, guess = parse_number(s.label), parse_number(s.predict)
        if truth is None or guess is None:
            unparsed += 1
        else:
            errors.append(abs(truth - guess))
    scores.counting_n = len(errors)
    scores.counting_unparsed = unparsed
    scores.counting_mae = sum(errors) / len(errors) if errors else None
