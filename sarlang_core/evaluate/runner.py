"""BenchmarkRun: one run folder, generated into, resumed, scored and reported.

    run = BenchmarkRun.create("runs/qwen3b-vqa", config)     # freezes the samples
    run.execute(progress=print)                               # resumes by itself after a kill
    run.status(), run.samples()

The folder holds ``run.json`` (the RunConfig), ``samples.jsonl`` (the samples, frozen at
creation so a changed store cannot shift a resumed run), ``manifest.json``, ``predictions.jsonl``
(one line per answer, appended and flushed as it arrives, fsynced per batch), ``errors.jsonl``
(samples whose model call failed: retried by the next execute), then ``verdicts.jsonl`` (VQA) or
``caption_scores.jsonl`` (captions: each sample's BLEU-1..4, ROUGE_L, CIDEr), ``metrics.json``,
``report.md``, ``report.csv`` and ``charts/*.png``. Lines already written are never rewritten;
a torn last line from a kill is cut off on resume.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Union

from ..atomic import write_text_atomic
from ..errors import CancelledError, DeviceLostError, EndpointError, SarlangError
from ..progress import CancelToken, Progress, ProgressCallback, check, report
from ..vlm.backend import ChatTurn
from .batch_fit import BatchFit
from .dataset_source import Sample, load_samples
from .jsonl_log import JsonlAppender, open_for_append, read_log
from .run_config import BenchmarkError, RunConfig
from .scoring import CAPTION_SCORES

log = logging.getLogger(__name__)

CONFIG, SAMPLES, MANIFEST, PREDICTIONS = "run.json", "samples.jsonl", "manifest.json", "predictions.jsonl"
ERRORS, VERDICTS, METRICS, OUTCOME = "errors.jsonl", "verdicts.jsonl", "metrics.json", "outcome.json"
GIVE_UP_AFTER = 8      # consecutive failures, with no success yet, that stop a run (dead endpoint)


@dataclass(frozen=True)
class RunProgress(Progress):
    """A Progress with the figures a progress bar wants: ETA and seconds per sample."""
    eta_s: Optional[float] = None
    per_sample_s: Optional[float] = None


@dataclass(frozen=True)
class RunStatus:
    state: str            # "new" | "partial" | "generated" | "complete"
    done: int             # samples with a prediction
    total: int
    failed: int           # samples whose last try failed (not predicted)
    outcome: Optional[dict] = None   # how the last execute ended: {"state", "message", "time"}

    def to_dict(self) -> dict:
        return {"state": self.state, "done": self.done, "total": self.total, "failed": self.failed,
                "outcome": self.outcome}


def _answerer(identity: dict) -> tuple:
    """What makes two backends the same answerer: the model and adapter names (an endpoint may move,
    a model folder may be copied to another disk; the backend kind may change between torch and an
    ONNX export of the same model only through a new run)."""
    return (identity.get("backend"), identity.get("model"), identity.get("adapter"))


def _describe(identity: dict) -> str:
    adapter = f" + {identity['adapter']}" if identity.get("adapter") else ""
    where = f" at {identity['endpoint']}" if identity.get("endpoint") else ""
    return f"'{identity.get('model')}{adapter}' ({identity.get('backend')}{where})"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fmt_eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return "ETA …"
    s = int(round(seconds))
    return f"ETA {s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"ETA {s // 60}m{s % 60:02d}s"


class BenchmarkRun:
    def __init__(self, run_dir: Path, config: RunConfig) -> None:
        self.dir, self.config = run_dir, config
        self._pipeline = None           # the config's Pipeline, made on first use (_prepare)
        self._pipeline_made = False

    # ------------------------------------------------------------------ open / create
    @classmethod
    def create(cls, run_dir: Union[str, Path], config: RunConfig) -> "BenchmarkRun":
        """A new run folder for ``config``; the samples are selected and frozen now."""
        run_dir = Path(run_dir)
        if (run_dir / CONFIG).exists():
            raise BenchmarkError(f"{run_dir}: already holds a run; resume it (`bench resume`) or choose another folder")
        if run_dir.exists() and not run_dir.is_dir():
            raise BenchmarkError(f"{run_dir}: is a file, not a folder")
        selected = load_samples(config.dataset_spec, config.types)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / SAMPLES, "".join(json.dumps(s.to_dict(), ensure_ascii=False) + "\n"
                                                for s in selected.samples))
        manifest = {"created": _now(), "samples": len(selected.samples), "source_kind": selected.kind,
                    "load_problems": selected.problems[:500], "load_problem_count": len(selected.problems)}
        write_text_atomic(run_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
        config.save(run_dir / CONFIG)     # last: a folder with run.json is a complete run folder
        return cls(run_dir, config)

    @classmethod
    def open(cls, run_dir: Union[str, Path]) -> "BenchmarkRun":
        run_dir = Path(run_dir)
        if not (run_dir / CONFIG).is_file():
            raise BenchmarkError(f"{run_dir}: not a benchmark run folder (no {CONFIG})")
        if not (run_dir / SAMPLES).is_file():
            raise BenchmarkError(f"{run_dir}: {SAMPLES} is missing: the run folder is incomplete")
        return cls(run_dir, RunConfig.load(run_dir / CONFIG))

    # ------------------------------------------------------------------ reading
    def sample_list(self) -> List[Sample]:
        return [Sample.from_dict(r) for r in read_log(self.dir / SAMPLES).records]

    def manifest(self) -> dict:
        return _read_json(self.dir / MANIFEST) or {}

    def predictions(self) -> Dict[str, dict]:
        return {r["id"]: r for r in read_log(self.dir / PREDICTIONS).records if "id" in r}

    def metrics(self) -> Optional[dict]:
        return _read_json(self.dir / METRICS)

    def status(self) -> RunStatus:
        total = len(read_log(self.dir / SAMPLES).records)
        preds = self.predictions()
        failed = {r["id"] for r in read_log(self.dir / ERRORS).records if r.get("id") not in preds}
        metrics = self.metrics()
        scored = metrics is not None and metrics.get("samples", {}).get("predicted") == len(preds)
        state = ("complete" if scored and len(preds) + len(failed) >= total else "new" if not preds
                 else "partial" if len(preds) + len(failed) < total else "generated")
        return RunStatus(state, len(preds), total, len(failed), _read_json(self.dir / OUTCOME))

    def samples(self) -> List[dict]:
        """Per-sample rows for a browser: image, question, references, prediction, error, verdict (VQA),
        scores (captions: {"Bleu_1".."Bleu_4", "ROUGE_L", "CIDEr"} as fractions, None until scored)."""
        from .caption_metrics import CAPTION_KEYS

        preds = self.predictions()
        errors = {r["id"]: r.get("error") for r in read_log(self.dir / ERRORS).records if "id" in r}
        verdicts = {r["id"]: r for r in read_log(self.dir / VERDICTS).records if "id" in r}
        scores = {}
        if self.config.task == "caption":
            for r in read_log(self.dir / CAPTION_SCORES).records:
                if "id" in r and all(isinstance(r.get(k), (int, float)) for k in CAPTION_KEYS):
                    scores[r["id"]] = {k: float(r[k]) for k in CAPTION_KEYS}
        rows = []
        for s in self.sample_list():
            p = preds.get(s.id)
            rows.append({**s.to_dict(), "prediction": p.get("prediction") if p else None,
                         "error": None if p else errors.get(s.id), "verdict": verdicts.get(s.id),
                         "scores": scores.get(s.id) if p else None})
        return rows

    # ------------------------------------------------------------------ work
    def execute(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None,
                backend=None, score: bool = True) -> RunStatus:
        """Generate what is missing (resuming after a kill), then score and report.
        ``backend``: an already made VLMBackend (else one is made from the config and unloaded after)."""
        try:
            self._generate(progress, cancel, backend)
            if score:
                self.score(progress=progress, cancel=cancel)
        except CancelledError:
            self._outcome("cancelled", "stopped by the user; `bench resume` continues it")
            raise
        except SarlangError as exc:
            self._outcome("failed", str(exc))
            raise
        st = self.status()
        note = f"{st.failed} sample(s) failed; `bench resume` retries them" if st.failed else ""
        self._outcome(st.state, note)
        return self.status()

    def _outcome(self, state: str, message: str) -> None:
        write_text_atomic(self.dir / OUTCOME, json.dumps({"state": state, "message": message, "time": _now()}))

    def _generate(self, progress, cancel, backend) -> None:
        samples = self.sample_list()
        contents, preds = open_for_append(self.dir / PREDICTIONS)
        with preds, JsonlAppender(self.dir / ERRORS, read_log(self.dir / ERRORS).good_bytes) as errors:
            done_ids = {r.get("id") for r in contents.records}
            todo = [s for s in samples if s.id not in done_ids]
            total, done = len(samples), len(samples) - len(todo)
            report(progress, "generate", done, total, f"{done}/{total} already predicted" if done else "")
            if not todo:
                return
            own = backend is None
            if own:
                backend = self.make_backend()
            try:
                if not backend.loaded:
                    backend.load(progress=progress, cancel=cancel)
                self._record_identity(backend)
                try:
                    self._answer(backend, todo, done, total, preds, errors, progress, cancel)
                except DeviceLostError as exc:
                    raise BenchmarkError(f"stopped: {exc}. The predictions so far are kept: `bench resume` "
                                         "continues the run (on the GPU once it is back, else on the CPU)") from exc
            finally:
                if own:
                    backend.unload()

    def _answer(self, backend, todo, done, total, preds, errors, progress, cancel) -> None:
        from .generation import answer_all

        cfg = self.config
        fit = BatchFit.for_backend(cfg.batch_size, backend) if hasattr(backend, "generate_batch") else None
        started, fresh, failures_in_row, ok_any, since_sync = time.perf_counter(), 0, 0, False, 0
        try:
            for ans in answer_all(backend, todo, self._prepare, cfg.generation, batch_size=fit or 1,
                                  concurrency=cfg.concurrency, cancel=cancel):
                fresh += 1
                if ans.error is None:
                    preds.write({"id": ans.id, "prediction": ans.text, "seconds": round(ans.seconds, 4)})
                    done += 1
                    ok_any, failures_in_row = True, 0
                else:
                    errors.write({"id": ans.id, "error": ans.error, "time": _now()})
                    failures_in_row += 1
                    if not ok_any and failures_in_row >= GIVE_UP_AFTER:
                        raise BenchmarkError(f"stopped: the first {failures_in_row} samples all failed; last "
                                             f"error: {ans.error}")
                since_sync += 1
                if since_sync >= max(fit.n if fit else 1, cfg.concurrency, 1):
                    preds.sync()
                    since_sync = 0
                if progress is not None:
                    per = (time.perf_counter() - started) / fresh
                    eta = per * (len(todo) - fresh)
                    what = f"failed: {ans.error}" if ans.error else "ok"
                    batch = f" · batch {fit.n}" if fit else ""
                    msg = f"{ans.id}: {what} · {per:.2f} s/sample{batch} · {_fmt_eta(eta)}"
                    progress(RunProgress("generate", done, total, msg, eta, per))
                check(cancel)
        finally:
            if fit is not None and fresh:
                self._record_batch(fit)

    def _record_batch(self, fit: BatchFit) -> None:
        """The batch size this session of the run ended with, and how it was chosen, on its backend entry."""
        manifest = self.manifest()
        entries = [b for b in manifest.get("backends", []) if isinstance(b, dict)]
        if entries:
            entries[-1]["batch_size"], entries[-1]["batch_note"] = fit.n, fit.note
            write_text_atomic(self.dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))

    def _prepare(self, sample: Sample):
        """(image, turns) for one sample: the image through the run's Pipeline, the paper's prompt."""
        from ..services.model_input import render_file

        if not self._pipeline_made:
            self._pipeline, self._pipeline_made = self.config.pipeline_object(), True
        return render_file(sample.image, self._pipeline), [ChatTurn("user", self.prompt_for(sample))]

    def prompt_for(self, sample: Sample) -> str:
        p = self.config.prompts
        if self.config.task == "caption":
            return p.caption
        return p.vqa_template.format(question=sample.question.strip())

    def make_backend(self):
        from ..vlm.factory import make_backend

        b = self.config.backend
        if b.kind == "openai":
            return make_backend(b.model, endpoint=b.endpoint, timeout=b.timeout)
        return make_backend(b.model or None, adapter=b.adapter)

    def _record_identity(self, backend) -> None:
        """Record who answers; on a resume, refuse another model than the one that answered before
        (a run mixing two models' predictions scores neither)."""
        manifest = self.manifest()
        try:
            identity = backend.identity()
        except Exception as exc:   # identity is informative only
            log.debug("backend identity not recorded: %s", exc)
            return
        earlier = [b for b in manifest.get("backends", []) if isinstance(b, dict)]
        if earlier and _answerer(earlier[0]) != _answerer(identity):
            raise EndpointError(f"this run was predicted by {_describe(earlier[0])}; the backend now is "
                                f"{_describe(identity)}: resume it with the same model, or start a new run")
        manifest.setdefault("backends", []).append({**identity, "time": _now()})
        write_text_atomic(self.dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))

    def score(self, *, progress: Optional[ProgressCallback] = None, cancel: Optional[CancelToken] = None) -> dict:
        """Metrics over the predicted samples -> metrics.json (+ verdicts.jsonl), report, charts."""
        from .charts import write_charts
        from .reports import write_run_report
        from .scoring import score_run

        check(cancel)
        metrics = score_run(self, progress=progress, cancel=cancel)
        write_text_atomic(self.dir / METRICS, json.dumps(metrics, indent=2, ensure_ascii=False))
        report(progress, "report", 0, 1, "report and charts")
        write_charts(self.dir / "charts", [metrics])
        write_run_report(self.dir, metrics)     # after the charts: it links them
        report(progress, "report", 1, 1, str(self.dir / "report.md"))
        return metrics


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
