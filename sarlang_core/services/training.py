"""Fine-tuning for the GUI and the CLI: configs, the data preview, run commands, runs, and what
comes after (merge, LLaMA-Factory export, register, benchmark the adapter).

    config = TrainConfig(model="models/qwen2.5-vl-3b", dataset="project/project.db")
    preview = preview_data(config, pipeline_json)         # formatted samples + token statistics
    launch = run_command(config, pipeline_json, "runs/lora-1")   # QProcess.start(program, args), env added
    event = parse_event(line)                             # each stdout line of that process
    request_stop("runs/lora-1")                           # checkpoint at the end of this step, then stop
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..errors import TrainError
from ..train.config import PRECISIONS, TrainConfig, config_params
from ..train.runs import TrainRunSummary, checkpoints, list_runs, read_events, read_state, request_stop, summarize
from .benchmarks import Launch, cli_program

__all__ = ["TrainConfig", "TrainRunSummary", "config_params", "PRECISIONS", "list_runs", "read_events", "read_state",
           "request_stop", "summarize", "checkpoints", "pipeline_for", "preview_data", "DataPreview",
           "PreviewSample", "run_command", "resume_command", "command_text", "parse_event", "run_config_of",
           "CONFIG_ENV", "EVENTS"]

PathLike = Union[str, Path]
CONFIG_ENV = "SARLANG_TRAIN_CONFIG"
EVENTS = ("progress", "start", "step", "eval", "checkpoint", "done", "stopped", "error")


def pipeline_for(choice: Optional[str], dataset: str) -> Any:
    """The Pipeline JSON a run uses: "paper" (the paper's chain), a saved FILE.json, "none" (images as
    stored), or None: a curation store's own Pipeline, images as stored for anything else (an
    export's images are preprocessed already; SARLANG-1M's are 8-bit quick-looks)."""
    from ..preprocess.pipeline import Pipeline
    from ..train.data import source_kind

    if choice == "none":
        return None
    if choice == "paper":
        return Pipeline().to_dict()
    if choice:
        return Pipeline.load(choice).to_dict()
    path = Path(dataset).expanduser()
    if path.exists() and source_kind(path) == "store":
        from .dataset_common import open_store, project_pipeline

        with open_store(path, create=False) as store:
            return project_pipeline(store).to_dict()
    return None


# ------------------------------------------------------------------ preview
@dataclass
class PreviewSample:
    id: str
    image: str
    pieces: List[Tuple[str, bool]]     # (text, supervised) in order: the formatted sample
    tokens: int
    supervised_tokens: int
    over_cutoff: bool


@dataclass
class DataPreview:
    samples: List[PreviewSample] = field(default_factory=list)
    stats: Dict[str, Any] = field(default_factory=dict)
    source: Dict[str, Any] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    description: str = ""


def preview_data(config: TrainConfig, pipeline_json: Any = None, *, count: int = 8, progress=None,
                 cancel=None) -> DataPreview:
    """What the run would train on: the first ``count`` samples formatted with the model's chat
    template (supervised text marked), and the token-length statistics of all of them."""
    from ..progress import check, report
    from ..train.data import load_samples
    from ..train.plan import plan_samples, resolve_model
    from ..vlm.processors import load_processor

    report(progress, "data", 0, 3, "reading the dataset")
    data = load_samples(config)
    check(cancel)
    report(progress, "tokenizer", 1, 3, "loading the tokenizer")
    model_path, family = resolve_model(config.model)
    processor = load_processor(model_path, family)
    check(cancel)
    report(progress, "lengths", 2, 3, f"measuring {len(data.samples):,} samples")
    planned = plan_samples(processor, family, config, data, require=False)
    out = DataPreview(stats=planned.stats(), source=data.summary(), problems=data.problems[:50],
                      description=planned.describe())
    enc = planned.encoder
    image_token = getattr(processor, "image_token", "")
    for s in data.samples[:count]:
        prompt, answer = enc.texts(s)
        n_img = enc.image_tokens(s.width or 1, s.height or 1) if s.width else 0
        shown = prompt.replace(image_token, f"<{n_img} image tokens>", 1) if image_token else prompt
        n = enc.length(s) if s.width else 0
        out.samples.append(PreviewSample(s.id, s.image, [(shown, False), (answer, True)], n,
                                         len(enc.answer_ids(answer)), n > config.cutoff))
    report(progress, "done", 3, 3, out.description)
    return out


# ------------------------------------------------------------------ commands
def run_command(config: TrainConfig, pipeline_json: Any, run_dir: PathLike) -> Launch:
    """Start a new run (out of process, JSON-lines progress). The config travels in the environment."""
    program, lead = cli_program()
    env = {CONFIG_ENV: json.dumps({"config": config.to_dict(), "pipeline": pipeline_json})}
    return Launch(program, lead + ["train", "run", "--config-env", CONFIG_ENV, "--out", str(run_dir),
                                   "--progress-jsonl"], env)


def resume_command(run_dir: PathLike) -> Launch:
    program, lead = cli_program()
    return Launch(program, lead + ["train", "resume", str(run_dir), "--progress-jsonl"], {})


def command_text(config: TrainConfig, run_dir: PathLike, pipeline_choice: Optional[str] = None) -> str:
    """The `sarlang-cli train run ...` line that starts the same run from a shell (defaults left out)."""
    default = TrainConfig(model=config.model, dataset=config.dataset)
    words = ["sarlang-cli", "train", "run", "--model", config.model, "--dataset", config.dataset, "--out",
             str(run_dir)]
    flags = {"images": "--images", "split": "--split", "eval_split": "--eval-split", "epochs": "--epochs",
             "max_steps": "--max-steps", "learning_rate": "--lr", "scheduler": "--scheduler",
             "warmup_ratio": "--warmup-ratio", "lora_r": "--lora-r", "lora_alpha": "--lora-alpha",
             "lora_dropout": "--lora-dropout", "batch_size": "--batch-size", "grad_accum": "--grad-accum",
             "cutoff": "--cutoff", "overlong": "--overlong", "image_max_pixels": "--image-max-pixels",
             "precision": "--precision", "seed": "--seed", "save_every": "--save-every",
             "keep_checkpoints": "--keep-checkpoints", "eval_every": "--eval-every", "deepspeed": "--deepspeed",
             "weight_decay": "--weight-decay", "max_grad_norm": "--max-grad-norm"}
    for name, flag in flags.items():
        value = getattr(config, name)
        if value != getattr(default, name) and value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if config.statuses != default.statuses:
        words += ["--status", ",".join(config.statuses)]
    for name, flag in (("train_vision", "--train-vision"), ("gradient_checkpointing", "--gradient-checkpointing")):
        if getattr(config, name):
            words.append(flag)
    if pipeline_choice:
        words += ["--pipeline", pipeline_choice]
    return shlex.join(words)


def parse_event(line: Union[str, bytes]) -> Optional[dict]:
    """One stdout line of a `train ... --progress-jsonl` process as a dict, or None for anything else."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and obj.get("event") in EVENTS else None


def run_config_of(run_dir: PathLike) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise TrainError(f"{run_dir}: not a training run (no config.json)")
    return TrainConfig.load(path)
