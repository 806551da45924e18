"""TrainConfig: one LoRA run, saved as the run folder's config.json.

The defaults are the authors' (LLaMA-Factory's Qwen2-VL LoRA example): rank 8, alpha 16, dropout 0,
every linear layer of the language model (the vision tower frozen), 3 epochs, batch 1 with gradient
accumulation 8, lr 1e-4 cosine with warmup ratio 0.1, bf16 where the GPU has it (fp32 on a CPU),
cutoff 2048 tokens, images at most 262,144 pixels. Each field carries a ``Param`` (help, bounds,
step, choices): it validates the config, builds the GUI's form and the CLI's help.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from ..errors import PipelineError, TrainError
from ..preprocess.filters.params import Param

SPLITS = ("train", "test", "all")
STATUSES = ("pending", "accepted", "edited", "rejected")
SCHEDULERS = ("cosine", "linear", "constant_with_warmup", "constant")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
OVERLONG = ("truncate", "skip")
DEEPSPEED = ("none", "zero2", "zero3")


def _p(name: str, kind: type, help: str, **kw: Any) -> dict:
    return Param(name, kind, help, **kw).metadata()


@dataclass(frozen=True)
class TrainConfig:
    model: str = field(default="", metadata=_p("model", str, "base model: a registry name or a model folder"))
    dataset: str = field(default="", metadata=_p(
        "dataset", str, "curation store (.db), a sharegpt export folder (dataset_info.json), or SARLANG-1M JSON/CSV"))
    images: Optional[str] = field(default=None, metadata=_p("images", str, "image root (default: beside the dataset)"))
    split: str = field(default="train", metadata=_p("split", str, "store split to train on", choices=SPLITS))
    statuses: Tuple[str, ...] = field(default=("accepted", "edited"), metadata=_p(
        "statuses", str, "review statuses to train on (a store); edited = accepted with a corrected answer",
        choices=STATUSES))
    eval_split: Optional[str] = field(default=None, metadata=_p(
        "eval_split", str, "held-out store split for the evaluation loss (none: no evaluation)", choices=SPLITS))
    epochs: float = field(default=3.0, metadata=_p("epochs", float, "passes over the data", min=0.0, min_open=True,
                                                   max=1000.0, step=1.0, decimals=1))
    max_steps: int = field(default=0, metadata=_p("max_steps", int, "stop after this many optimizer steps "
                                                  "(0: run the epochs)", min=0, max=10_000_000, step=10))
    learning_rate: float = field(default=1e-4, metadata=_p("learning_rate", float, "peak learning rate", min=0.0,
                                                           min_open=True, max=1.0, step=1e-5, decimals=6))
    scheduler: str = field(default="cosine", metadata=_p("scheduler", str, "learning-rate schedule after warm-up",
                                                         choices=SCHEDULERS))
    warmup_ratio: float = field(default=0.1, metadata=_p("warmup_ratio", float, "share of the steps spent warming "
                                                         "up the learning rate", min=0.0, max=0.9, step=0.05,
                                                         decimals=2))
    weight_decay: float = field(default=0.0, metadata=_p("weight_decay", float, "AdamW weight decay", min=0.0,
                                                         max=1.0, step=0.01, decimals=3))
    max_grad_norm: float = field(default=1.0, metadata=_p("max_grad_norm", float, "gradient clipping norm",
                                                          min=0.0, min_open=True, max=1000.0, step=0.1, decimals=2))
    lora_r: int = field(default=8, metadata=_p("lora_r", int, "LoRA rank", min=1, max=1024, step=1))
    lora_alpha: int = field(default=16, metadata=_p("lora_alpha", int, "LoRA alpha (scale = alpha / rank)", min=1,
                                                    max=4096, step=1))
    lora_dropout: float = field(default=0.0, metadata=_p("lora_dropout", float, "dropout on the LoRA input",
                                                         min=0.0, max=0.9, step=0.05, decimals=2))
    train_vision: bool = field(default=False, metadata=_p(
        "train_vision", bool, "also put LoRA on the vision tower (vLLM ignores LoRA weights on the vision encoder: "
        "merge the adapter before serving it there)"))
    batch_size: int = field(default=1, metadata=_p("batch_size", int, "samples per device per step", min=1,
                                                   max=1024, step=1))
    grad_accum: int = field(default=8, metadata=_p("grad_accum", int, "steps accumulated per optimizer step",
                                                   min=1, max=4096, step=1))
    cutoff: int = field(default=2048, metadata=_p("cutoff", int, "longest sample, in tokens (image tokens "
                                                  "included)", min=16, max=1_000_000, step=256))
    overlong: str = field(default="truncate", metadata=_p(
        "overlong", str, "a sample longer than the cutoff: truncate its answer, or skip it", choices=OVERLONG))
    image_max_pixels: int = field(default=262_144, metadata=_p(
        "image_max_pixels", int, "images larger than this are scaled down (aspect kept) before the processor",
        min=784, max=100_000_000, step=65_536))
    precision: str = field(default="auto", metadata=_p(
        "precision", str, "auto: bf16 on a GPU that has it, fp16 on other GPUs, fp32 on a CPU", choices=PRECISIONS))
    gradient_checkpointing: bool = field(default=False, metadata=_p(
        "gradient_checkpointing", bool, "recompute activations in the backward pass: less memory, ~30 % slower"))
    seed: int = field(default=42, metadata=_p("seed", int, "seed for initialisation, data order and dropout",
                                              min=0, max=2**31 - 1, step=1))
    save_every: int = field(default=100, metadata=_p("save_every", int, "save a checkpoint every N optimizer steps",
                                                     min=1, max=10_000_000, step=10))
    keep_checkpoints: int = field(default=2, metadata=_p("keep_checkpoints", int, "checkpoints kept on disk "
                                                         "(older ones are deleted)", min=1, max=1000, step=1))
    eval_every: int = field(default=0, metadata=_p("eval_every", int, "evaluation loss every N optimizer steps "
                                                   "(0: never)", min=0, max=10_000_000, step=10))
    deepspeed: str = field(default="none", metadata=_p(
        "deepspeed", str, "DeepSpeed ZeRO stage when DeepSpeed is installed (multi-GPU runs)", choices=DEEPSPEED))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            param: Param = f.metadata["param"]
            if value is None and f.name in ("images", "eval_split"):
                continue
            if f.name == "statuses":
                value = tuple(value or ())
                if not value:
                    raise TrainError("statuses: give at least one review status")
                for s in value:
                    _check(param, s)
                object.__setattr__(self, "statuses", value)
                continue
            if param.kind is str and not param.choices:
                if not isinstance(value, str):
                    raise TrainError(f"{f.name} must be text, got {value!r}")
                continue
            if param.kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            object.__setattr__(self, f.name, _check(param, value))
        if not self.model.strip():
            raise TrainError("a run needs a base model (a registry name or a model folder)")
        if not self.dataset.strip():
            raise TrainError("a run needs a dataset: a curation store, a sharegpt export folder or SARLANG-1M JSON/CSV")
        if self.eval_split is not None and self.eval_split == self.split:
            raise TrainError(f"the evaluation split must differ from the training split ({self.split!r})")

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["statuses"] = list(self.statuses)
        return d

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "config") -> "TrainConfig":
        if not isinstance(data, dict):
            raise TrainError(f"{where}: expected a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TrainError(f"{where}: unknown field(s) {', '.join(unknown)}")
        data = dict(data)
        if isinstance(data.get("statuses"), list):
            data["statuses"] = tuple(data["statuses"])
        return cls(**data)

    @classmethod
    def load(cls, path: Any) -> "TrainConfig":
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainError(f"{p}: not found") from None
        except (OSError, ValueError) as exc:
            raise TrainError(f"{p}: cannot be read ({exc})") from None
        return cls.from_dict(data, where=str(p))

    def with_(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    @property
    def lora_scale(self) -> float:
        return self.lora_alpha / self.lora_r


def _check(param: Param, value: Any) -> Any:
    try:
        return param.check(value)
    except PipelineError as exc:
        raise TrainError(str(exc)) from None


def config_params() -> Dict[str, Param]:
    """Every field's Param, in form order (the GUI builds its controls from these)."""
    return {f.name: f.metadata["param"] for f in dataclasses.fields(TrainConfig)}
