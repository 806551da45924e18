"""RunConfig: everything that defines a benchmark run, validated, saved as run.json in its folder.

A run is (backend and model, adapter, preprocessing Pipeline, dataset split, prompts, generation
settings, judge). The same JSON drives `sarlang-cli bench run --config` and the GUI form.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ..errors import SarlangError
from ..vlm.backend import GenerationConfig
from ..vlm.prompts import CAPTION_PROMPT, VQA_TEMPLATE
from .batch_fit import AUTO, parse_batch_size

SCHEMA = "sarlang.bench-run/1"
TASKS = ("caption", "vqa")
SPLITS = ("train", "test", "all")
BACKEND_KINDS = ("local", "openai")
JUDGE_MODES = ("paper", "strict")
JUDGE_PROMPT_NAMES = ("released", "paper-text")   # evaluate/judge.py: JUDGE_PROMPTS
CAPTION_TYPES = ("caption_concise", "caption_detailed")
VQA_TYPES = ("identification", "classification", "counting", "positioning", "referring", "general")
STATUSES = ("pending", "accepted", "edited", "rejected")


class BenchmarkError(SarlangError):
    """A benchmark run cannot be configured, started, resumed or reported (message says why)."""


def _m(help: str, **extra: Any) -> dict:
    return {"help": help, **extra}


@dataclass(frozen=True)
class BackendSpec:
    kind: str = field(default="local", metadata=_m("local model folder or OpenAI-compatible server",
                                                   choices=BACKEND_KINDS))
    model: str = field(default="", metadata=_m("model folder or registry name; for a server, the served model"))
    adapter: Optional[str] = field(default=None, metadata=_m("LoRA adapter folder (local only)"))
    endpoint: Optional[str] = field(default=None, metadata=_m("server base URL, e.g. http://gpu:8000/v1"))
    label: Optional[str] = field(default=None, metadata=_m("name shown in reports (default: the model's)"))
    param: Optional[str] = field(default=None, metadata=_m("parameter count shown in reports, e.g. 3B"))
    timeout: float = field(default=60.0, metadata=_m("seconds per request to the server", min=1.0, max=3600.0))

    def __post_init__(self) -> None:
        if self.kind not in BACKEND_KINDS:
            raise BenchmarkError(f"backend kind must be one of {BACKEND_KINDS}, got {self.kind!r}")
        if not (isinstance(self.timeout, (int, float)) and 1.0 <= float(self.timeout) <= 3600.0):
            raise BenchmarkError(f"request timeout must be 1..3600 s, got {self.timeout!r}")
        if self.kind == "openai":
            if not (self.endpoint or "").strip():
                raise BenchmarkError("an 'openai' backend needs an endpoint URL")
            if not self.model.strip():
                raise BenchmarkError("an 'openai' backend needs the name of the model the server serves")
            if self.adapter:
                raise BenchmarkError("an adapter is for local models; serve it with the server instead "
                                     "(vLLM --enable-lora) and name it as the model")
        elif self.endpoint:
            raise BenchmarkError("a 'local' backend takes no endpoint (use kind 'openai')")

    @property
    def fine_tuned(self) -> bool:
        return bool(self.adapter)


@dataclass(frozen=True)
class DatasetSpec:
    source: str = field(default="", metadata=_m("curation store (.db) or SARLANG-1M JSON / CSV"))
    images: Optional[str] = field(default=None, metadata=_m("image root (default: beside the source)"))
    split: str = field(default="test", metadata=_m("store split; a JSON/CSV file is one split already",
                                                   choices=SPLITS))
    types: Tuple[str, ...] = field(default=(), metadata=_m("item types to keep (default: all of the task)"))
    status: Tuple[str, ...] = field(default=(), metadata=_m("store review statuses to keep (default: any)"))
    limit: Optional[int] = field(default=None, metadata=_m("first N samples only", min=1))

    def __post_init__(self) -> None:
        object.__setattr__(self, "types", tuple(self.types or ()))
        object.__setattr__(self, "status", tuple(self.status or ()))
        if not str(self.source).strip():
            raise BenchmarkError("the dataset needs a source: a curation store (.db) or a SARLANG-1M JSON/CSV")
        if self.split not in SPLITS:
            raise BenchmarkError(f"split must be one of {SPLITS}, got {self.split!r}")
        bad = [t for t in self.types if t not in CAPTION_TYPES + VQA_TYPES]
        if bad:
            known = ", ".join(CAPTION_TYPES + VQA_TYPES)
            raise BenchmarkError(f"unknown item type(s) {', '.join(bad)}; known: {known}")
        bad = [s for s in self.status if s not in STATUSES]
        if bad:
            raise BenchmarkError(f"unknown status(es) {', '.join(bad)}; known: {', '.join(STATUSES)}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise BenchmarkError(f"limit must be a positive integer, got {self.limit!r}")


@dataclass(frozen=True)
class PromptSpec:
    caption: str = field(default=CAPTION_PROMPT, metadata=_m("prompt sent for a caption"))
    vqa_template: str = field(default=VQA_TEMPLATE, metadata=_m("VQA prompt; {question} is replaced"))

    def __post_init__(self) -> None:
        if not self.caption.strip():
            raise BenchmarkError("the caption prompt is empty")
        if "{question}" not in self.vqa_template:
            raise BenchmarkError("the VQA template must contain {question}")
        try:
            self.vqa_template.format(question="q")
        except (KeyError, IndexError, ValueError) as exc:
            raise BenchmarkError(f"the VQA template has a stray brace field ({exc}); write {{{{ }}}} for braces") \
                from None


@dataclass(frozen=True)
class JudgeSpec:
    mode: str = field(default="paper", metadata=_m("paper: the authors' rules; strict: exact answers",
                                                   choices=JUDGE_MODES))
    endpoint: Optional[str] = field(default=None, metadata=_m("judge LLM server; none = offline (undecided)"))
    model: str = field(default="gpt-4o-mini", metadata=_m("judge model"))
    timeout: float = field(default=30.0, metadata=_m("seconds per judge request", min=1.0, max=600.0))
    concurrency: int = field(default=8, metadata=_m("judge requests at once", min=1, max=64))
    max_retries: int = field(default=3, metadata=_m("retries of a failed judge request", min=0, max=10))
    prompt: str = field(default="released", metadata=_m(
        "released: the request the authors' Evaluate_VQA.py sends; paper-text: the paper's printed wording",
        choices=JUDGE_PROMPT_NAMES))

    def __post_init__(self) -> None:
        if self.mode not in JUDGE_MODES:
            raise BenchmarkError(f"judge mode must be one of {JUDGE_MODES}, got {self.mode!r}")
        if self.prompt not in JUDGE_PROMPT_NAMES:
            raise BenchmarkError(f"judge prompt must be one of {JUDGE_PROMPT_NAMES}, got {self.prompt!r}")
        if not (1.0 <= float(self.timeout) <= 600.0):
            raise BenchmarkError(f"judge timeout must be 1..600 s, got {self.timeout!r}")
        if not (isinstance(self.concurrency, int) and 1 <= self.concurrency <= 64):
            raise BenchmarkError(f"judge concurrency must be 1..64, got {self.concurrency!r}")
        if not (isinstance(self.max_retries, int) and 0 <= self.max_retries <= 10):
            raise BenchmarkError(f"judge max_retries must be 0..10, got {self.max_retries!r}")


@dataclass(frozen=True)
class RunConfig:
    name: str = field(default="run", metadata=_m("run name, shown in reports"))
    task: str = field(default="vqa", metadata=_m("caption or vqa", choices=TASKS))
    backend: BackendSpec = field(default_factory=BackendSpec)
    dataset: Optional[DatasetSpec] = field(default=None, metadata=_m("what to evaluate on"))
    pipeline: Optional[Dict[str, Any]] = field(default=None, metadata=_m(
        "preprocessing Pipeline JSON; null = images as stored"))
    prompts: PromptSpec = field(default_factory=PromptSpec)
    generation: GenerationConfig = field(default_factory=lambda: GenerationConfig(max_new_tokens=128))
    judge: JudgeSpec = field(default_factory=JudgeSpec)
    batch_size: Union[int, str] = field(default=AUTO, metadata=_m(
        "samples per generate call (local models): 1..256, or auto = measured against free GPU memory"))
    concurrency: int = field(default=4, metadata=_m("requests at once (server backends)", min=1, max=128))

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise BenchmarkError("a run needs a name")
        if self.task not in TASKS:
            raise BenchmarkError(f"task must be one of {TASKS}, got {self.task!r}")
        if not isinstance(self.dataset, DatasetSpec):
            raise BenchmarkError("a run needs a dataset (a curation store, or a SARLANG-1M JSON/CSV)")
        wrong = [t for t in self.dataset.types if t not in (CAPTION_TYPES if self.task == "caption" else VQA_TYPES)]
        if wrong:
            raise BenchmarkError(f"item type(s) {', '.join(wrong)} do not belong to a {self.task} run")
        try:
            object.__setattr__(self, "batch_size", parse_batch_size(self.batch_size))
        except ValueError as exc:
            raise BenchmarkError(str(exc).replace("batch size", "batch_size")) from None
        if not (isinstance(self.concurrency, int) and 1 <= self.concurrency <= 128):
            raise BenchmarkError(f"concurrency must be 1..128, got {self.concurrency!r}")
        if self.pipeline is not None:
            self.pipeline_object()   # validates

    # ------------------------------------------------------------------ derived
    @property
    def dataset_spec(self) -> DatasetSpec:
        """``dataset``, never None: __post_init__ refuses a run without one (the field defaults to
        None only so that it can follow fields with defaults)."""
        assert self.dataset is not None
        return self.dataset

    @property
    def types(self) -> Tuple[str, ...]:
        return self.dataset_spec.types or (CAPTION_TYPES if self.task == "caption" else VQA_TYPES)

    def pipeline_object(self):
        """The Pipeline, or None when images go to the model as stored."""
        from ..errors import PipelineError
        from ..preprocess.pipeline import Pipeline

        if self.pipeline is None:
            return None
        try:
            return Pipeline.from_dict(self.pipeline)
        except PipelineError as exc:
            raise BenchmarkError(f"pipeline: {exc}") from None

    def with_(self, **changes: Any) -> "RunConfig":
        return replace(self, **changes)

    # ------------------------------------------------------------------ JSON
    def to_dict(self, *, secrets: bool = False) -> Dict[str, Any]:
        """The config as JSON data; endpoint URLs lose their credentials (``urls.redact_url``)
        unless ``secrets`` (only for handing the config to the process that runs it)."""
        from ..urls import redact_url

        data = asdict(self)
        data["dataset"]["types"] = list(self.dataset_spec.types)
        data["dataset"]["status"] = list(self.dataset_spec.status)
        if not secrets:
            for part in ("backend", "judge"):
                if data[part].get("endpoint"):
                    data[part]["endpoint"] = redact_url(data[part]["endpoint"])
        return {"schema": SCHEMA, **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def save(self, path: Union[str, Path]) -> Path:
        """run.json: without URL credentials, so a resumed run needs the key from OPENAI_API_KEY
        or the keyring."""
        from ..atomic import write_text_atomic

        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "RunConfig":
        if not isinstance(data, dict):
            raise BenchmarkError("a run config must be a JSON object")
        data = dict(data)
        schema = data.pop("schema", SCHEMA)
        if schema != SCHEMA:
            raise BenchmarkError(f"unsupported run config schema {schema!r} (expected {SCHEMA})")
        parts = {"backend": BackendSpec, "dataset": DatasetSpec, "prompts": PromptSpec,
                 "generation": GenerationConfig, "judge": JudgeSpec}
        _no_unknown(cls, data, "run config")
        try:
            for key, kind in parts.items():
                if key in data:
                    if not isinstance(data[key], dict):
                        raise BenchmarkError(f"'{key}' must be a JSON object")
                    _no_unknown(kind, data[key], key)
                    data[key] = kind(**data[key])
            return cls(**data)
        except SarlangError as exc:
            if isinstance(exc, BenchmarkError):
                raise
            raise BenchmarkError(str(exc)) from None
        except TypeError as exc:
            raise BenchmarkError(f"invalid run config: {exc}") from None

    @classmethod
    def load(cls, path: Union[str, Path]) -> "RunConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise BenchmarkError(f"{path}: cannot read the run config ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{path}: not JSON ({exc})") from None
        try:
            return cls.from_dict(data)
        except BenchmarkError as exc:
            raise BenchmarkError(f"{path}: {exc}") from None


def _no_unknown(kind, data: dict, where: str) -> None:
    unknown = set(data) - {f.name for f in fields(kind)}
    if unknown:
        raise BenchmarkError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
