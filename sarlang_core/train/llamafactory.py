"""A run's settings as a LLaMA-Factory 0.9.5 recipe, to train the same LoRA there (the authors' tool)
and compare.

    yaml = export_llamafactory("runs/lora-1", "lf/lora-1")      # lf/lora-1/train_lora.yaml, README.txt, data/
    # then, in a LLaMA-Factory environment:  cd lf/lora-1 && llamafactory-cli train train_lora.yaml

The data LLaMA-Factory reads is the data the run read: a curation store is exported (sharegpt, the
run's statuses, images rendered through the run's Pipeline) into ``data/``; an export folder or a
SARLANG-1M JSON is pointed at where it lies when the run used its images as stored; otherwise
(a CSV, or a run that preprocessed the images) the run's samples are written into ``data/`` with
their images rendered as the run saw them. The YAML is written by hand (no YAML library needed).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..atomic import atomic_output, write_text_atomic
from ..errors import SarlangError, TrainError
from . import runs
from .config import TrainConfig

PathLike = Union[str, os.PathLike]
LLAMAFACTORY_VERSION = "0.9.5"
YAML_NAME, README_NAME, DATA_DIR = "train_lora.yaml", "README.txt", "data"
TEMPLATES = {"qwen2_5_vl": "qwen2_vl", "qwen2_vl": "qwen2_vl", "llava": "llava"}
DEEPSPEED_FILES = {"zero2": "examples/deepspeed/ds_z2_config.json", "zero3": "examples/deepspeed/ds_z3_config.json"}
_SHAREGPT = {"formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
             "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
Row = Tuple[str, Any, Optional[str]]          # key, value, comment


@dataclass
class LFData:
    """Where LLaMA-Factory finds the data: dataset_dir/dataset_info.json, the names to train and evaluate on."""
    dataset_dir: Path
    train: List[str]
    eval: List[str] = field(default_factory=list)
    media_dir: Optional[Path] = None
    notes: List[str] = field(default_factory=list)


# ------------------------------------------------------------------ YAML
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./,+-]*")
_NUMBERISH = re.compile(r"[-+]?(\.?[0-9][0-9_.]*([eE][-+]?[0-9]+)?|\.inf|\.nan)", re.IGNORECASE)
_RESERVED = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"}


def yaml_scalar(value: Any) -> str:
    """One YAML 1.1 scalar that PyYAML / OmegaConf read back as the same Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text:                       # YAML 1.1 floats need a dot and a signed exponent
            mantissa, exp = text.split("e")
            mantissa += "" if "." in mantissa else ".0"
            text = f"{mantissa}e{exp if exp[0] in '+-' else '+' + exp}"
        return text
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _RESERVED and not _NUMBERISH.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)   # a JSON string is a YAML double-quoted scalar


def yaml_text(header: Sequence[str], sections: Sequence[Tuple[str, Sequence[Row]]]) -> str:
    lines = [f"# {h}".rstrip() for h in header]
    for title, rows in sections:
        if not rows:
            continue
        lines += ["", f"### {title}"]
        for key, value, comment in rows:
            line = f"{key}: {yaml_scalar(value)}"
            lines.append(f"{line}  # {comment}" if comment else line)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ data
def _dataset_info(folder: Path) -> Dict[str, Any]:
    try:
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainError(f"{folder}: no dataset_info.json (give a sharegpt export folder)") from None
    except (OSError, ValueError) as exc:
        raise TrainError(f"{folder}/dataset_info.json cannot be read ({exc})") from None
    if not isinstance(info, dict) or not info:
        raise TrainError(f"{folder}/dataset_info.json: expected an object naming at least one dataset")
    return info


def pick_names(names: Sequence[str], split: str, where: Any) -> List[str]:
    """The datasets of ``split`` as the run picks them: one per split in the project's exports
    ("sarlang_train"); a layout without split names is one split already; "all" takes every one."""
    chosen = list(names)
    if split != "all":
        named = [n for n in names if n.endswith(("_train", "_test"))]
        if named:
            chosen = [n for n in named if n.endswith(f"_{split}")]
    if not chosen:
        raise TrainError(f"{where}: no dataset of split {split!r} in dataset_info.json "
                         f"(it names {', '.join(names)})")
    return chosen


def _evaluates(config: TrainConfig) -> bool:
    return bool(config.eval_split and config.eval_every)      # the engine's rule


def _from_info(folder: Path, config: TrainConfig, media_dir: Optional[Path], note: str) -> LFData:
    names = list(_dataset_info(folder))
    return LFData(folder, pick_names(names, config.split, folder),
                  pick_names(names, str(config.eval_split), folder) if _evaluates(config) else [],
                  media_dir, [note])


def _from_store(config: TrainConfig, pipeline: Any, dest: Path) -> LFData:
    from ..services.datasets import export_project

    try:
        export_project(config.dataset, dest, fmt="sharegpt", statuses=config.statuses,
                       preprocess=pipeline is not None, pipeline=pipeline)
    except SarlangError as exc:
        raise TrainError(f"exporting {config.dataset} for LLaMA-Factory: {exc}") from exc
    how = ("rendered through the run's Pipeline as PNG" if pipeline is not None else "copied as stored")
    return _from_info(dest, config, None, f"data/: the store's items of status {' or '.join(config.statuses)}, "
                                          f"images {how} (services.datasets.export_project)")


def _write_info(dest: Path, names: Dict[str, str]) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    info = {name: {"file_name": file_name, **_SHAREGPT} for name, file_name in names.items()}
    write_text_atomic(dest / "dataset_info.json", json.dumps(info, indent=2) + "\n")


def _from_samples(config: TrainConfig, pipeline: Any, dest: Path) -> LFData:
    """The run's own samples (train and, when it evaluates, eval) as sharegpt files in ``dest``; images
    rendered through the run's Pipeline into dest/images, or referenced where they lie."""
    from ..preprocess.pipeline import Pipeline
    from ..services.model_input import render_file
    from .data import load_samples

    splits = [config.split] + ([str(config.eval_split)] if _evaluates(config) else [])
    pipe = Pipeline.from_dict(pipeline) if pipeline is not None else None
    rendered: Dict[str, str] = {}
    names: Dict[str, str] = {}
    for split in splits:
        records = []
        for s in load_samples(config, split=split).samples:
            image = s.image
            if pipe is not None:
                if image not in rendered:
                    rel = f"images/{hashlib.sha1(image.encode()).hexdigest()[:16]}.png"
                    (dest / "images").mkdir(parents=True, exist_ok=True)
                    if not (dest / rel).is_file():
                        with atomic_output(dest / rel) as tmp:
                            render_file(image, pipe).save(tmp, format="PNG")
                    rendered[image] = rel
                image = rendered[image]
            records.append({"messages": [{"role": "user", "content": "<image>" + s.question},
                                         {"role": "assistant", "content": s.answer}], "images": [image]})
        name = f"sarlang_{split}"
        dest.mkdir(parents=True, exist_ok=True)
        write_text_atomic(dest / f"{name}.json", json.dumps(records, ensure_ascii=False, indent=1))
        names[name] = f"{name}.json"
    _write_info(dest, names)
    how = "rendered through the run's Pipeline into data/images" if pipe is not None else "referenced where they lie"
    return LFData(dest, [f"sarlang_{config.split}"], [f"sarlang_{config.eval_split}"] if _evaluates(config) else [],
                  None, [f"data/: the run's samples ({config.dataset}), images {how}"])


def _dataset(config: TrainConfig, pipeline: Any, out: Path, dataset_dir: Optional[PathLike]) -> LFData:
    from .data import source_kind

    if dataset_dir is not None:
        folder = Path(dataset_dir).expanduser().resolve()
        return _from_info(folder, config, None, f"{folder}: given as the dataset folder; its images are used as "
                                                "they are (they should be what the run trained on)")
    src = Path(config.dataset).expanduser()
    if not src.exists():
        raise TrainError(f"{src}: the run's dataset is not here any more (give dataset_dir: an export folder)")
    src = src.resolve()
    kind = source_kind(src)
    images = Path(config.images).expanduser().resolve() if config.images else None
    dest = out / DATA_DIR
    if kind == "store":
        if images is not None:
            raise TrainError(f"the run read the store's images under {images}; LLaMA-Factory's export reads them "
                             "beside the store: export the store yourself and give dataset_dir")
        return _from_store(config, pipeline, dest)
    if pipeline is None and kind == "export":
        return _from_info(src, config, images, f"{src}: the run's export folder, images as stored")
    if pipeline is None and kind == "sarlang-json":
        _write_info(dest, {"sarlang1m": str(src)})
        return LFData(dest, ["sarlang1m"], ["sarlang1m"] if _evaluates(config) else [], images or src.parent,
                      [f"data/dataset_info.json names {src} (SARLANG-1M JSON, read in place), images as stored"])
    return _from_samples(config, pipeline, dest)


# ------------------------------------------------------------------ recipe
def _precision(config: TrainConfig) -> List[Row]:
    if config.precision in ("auto", "bf16"):
        return [("bf16", True, "the run's 'auto' is bf16 on a GPU that has it; use fp16: true on older GPUs"
                 if config.precision == "auto" else None)]
    if config.precision == "fp16":
        return [("fp16", True, None)]
    return [("bf16", False, "fp32, as the run")]


Sections = List[Tuple[str, List[Row]]]


def recipe(config: TrainConfig, base: Path, template: str, data: LFData, output_dir: Path) -> Sections:
    """The YAML's sections: (title, [(key, value, comment)])."""
    vision = config.train_vision
    method: List[Row] = [
        ("stage", "sft", None), ("do_train", True, None), ("finetuning_type", "lora", None),
        ("lora_rank", config.lora_r, None), ("lora_alpha", config.lora_alpha, None),
        ("lora_dropout", config.lora_dropout, None), ("lora_target", "all", "every linear layer"),
        ("freeze_vision_tower", not vision, "LoRA on the vision tower too" if vision else "language model only"),
        ("freeze_multi_modal_projector", not vision, None),
        ("disable_gradient_checkpointing", not config.gradient_checkpointing,
         "LLaMA-Factory checkpoints activations unless told not to" if not config.gradient_checkpointing else None),
    ]
    if config.deepspeed != "none":
        method.append(("deepspeed", DEEPSPEED_FILES[config.deepspeed], "a path inside the LLaMA-Factory checkout"))
    dataset: List[Row] = [("dataset", ",".join(data.train), None)]
    if data.eval:
        dataset.append(("eval_dataset", ",".join(data.eval), None))
    dataset.append(("dataset_dir", str(data.dataset_dir), None))
    if data.media_dir is not None:
        dataset.append(("media_dir", str(data.media_dir), "image paths are relative to this folder"))
    dataset += [("template", template, None), ("cutoff_len", config.cutoff, None), ("overwrite_cache", True, None),
                ("preprocessing_num_workers", 16, None), ("dataloader_num_workers", 4, None)]
    train: List[Row] = [
        ("per_device_train_batch_size", config.batch_size, None),
        ("gradient_accumulation_steps", config.grad_accum, None),
        ("learning_rate", float(config.learning_rate), None), ("num_train_epochs", float(config.epochs), None)]
    if config.max_steps > 0:
        train.append(("max_steps", config.max_steps, "overrides num_train_epochs"))
    train += [("lr_scheduler_type", config.scheduler, None), ("warmup_ratio", float(config.warmup_ratio), None),
              ("weight_decay", float(config.weight_decay), None), ("max_grad_norm", float(config.max_grad_norm), None),
              *_precision(config), ("ddp_timeout", 180000000, None), ("seed", config.seed, None)]
    evaluation: List[Row] = []
    if data.eval:
        evaluation = [("per_device_eval_batch_size", config.batch_size, None), ("eval_strategy", "steps", None),
                      ("eval_steps", config.eval_every, None)]
    return [
        ("model", [("model_name_or_path", str(base), None), ("image_max_pixels", config.image_max_pixels, None),
                   ("trust_remote_code", False, None)]),
        ("method", method),
        ("dataset", dataset),
        ("output", [("output_dir", str(output_dir), None), ("logging_steps", 10, None),
                    ("save_steps", config.save_every, None), ("save_total_limit", config.keep_checkpoints, None),
                    ("plot_loss", True, None), ("overwrite_output_dir", True, None), ("report_to", "none", None)]),
        ("train", train),
        ("eval", evaluation),
    ]


def _run_pipeline(run: Path) -> Any:
    try:
        return json.loads((run / runs.PIPELINE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise TrainError(f"{run / runs.PIPELINE}: cannot be read ({exc})") from None


def export_llamafactory(run_dir: PathLike, out_dir: PathLike, *, dataset_dir: Optional[PathLike] = None) -> Path:
    """Write ``out_dir``/train_lora.yaml (+ README.txt, and data/ when the data has to be written) that
    trains the run's LoRA in LLaMA-Factory 0.9.5; returns the YAML's path. ``dataset_dir``: a sharegpt
    export folder (dataset_info.json) to use instead of the run's dataset."""
    from .plan import resolve_model

    run = Path(run_dir).expanduser().resolve()
    config = TrainConfig.load(run / runs.CONFIG)
    pipeline = _run_pipeline(run)
    base, family = resolve_model(config.model)
    base = base.resolve()
    if family not in TEMPLATES:
        raise TrainError(f"{base}: no LLaMA-Factory template is known for model type {family!r}")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out}: is a file; choose a folder for the LLaMA-Factory recipe")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrainError(f"{out}: cannot create the folder ({exc})") from exc
    data = _dataset(config, pipeline, out, dataset_dir)
    header = [f"LLaMA-Factory {LLAMAFACTORY_VERSION} recipe for the SARLANG Studio run {run}",
              f"Run it:  cd {out} && llamafactory-cli train {YAML_NAME}",
              f"(in an environment with LLaMA-Factory: pip install llamafactory=={LLAMAFACTORY_VERSION})",
              f"What differs from the run: {README_NAME}"]
    sections = recipe(config, base, TEMPLATES[family], data, out / "saves" / "lora")
    yaml_path = write_text_atomic(out / YAML_NAME, yaml_text(header, sections))
    write_text_atomic(out / README_NAME, _readme(run, config, pipeline, base, family, data, out))
    return yaml_path


def _readme(run: Path, config: TrainConfig, pipeline: Any, base: Path, family: str, data: LFData,
            out: Path) -> str:
    differs = [
        "Data order and dropout draw different random numbers: losses are close, not equal step for step.",
        "LLaMA-Factory logs every 10 steps (trainer_log.jsonl, train_results.json); the run logged every step.",
        f"The prompt comes from LLaMA-Factory's '{TEMPLATES[family]}' template; the run used the model's own "
        "chat template. Both supervise only the answer (prompt and padding labelled -100).",
        "Images: both scale to at most image_max_pixels before the processor; resampling may differ slightly.",
    ]
    if data.eval and data.eval == data.train:
        differs.append("The evaluation set is the training set: a SARLANG-1M file has no splits (as in the run).")
    if config.overlong == "skip":
        differs.append("The run skipped samples longer than the cutoff; LLaMA-Factory truncates them.")
    if config.precision == "auto":
        differs.append("precision 'auto' is written as bf16 (the authors' setting): use fp16 on GPUs without bf16.")
    if config.eval_split and not config.eval_every:
        differs.append("The run named an evaluation split but evaluated never (eval_every 0): no eval here either.")
    where = "language model and vision tower" if config.train_vision else "language model"
    images = "the run preprocessed the images (pipeline.json)" if pipeline is not None else "none (images as stored)"
    lines = [
        f"LLaMA-Factory {LLAMAFACTORY_VERSION} recipe for the run {run}",
        "",
        "How to train:",
        f"  1. A separate environment with LLaMA-Factory: pip install llamafactory=={LLAMAFACTORY_VERSION}",
        "     (it pins its own transformers and peft; keep it apart from SARLANG Studio's).",
        f"  2. cd {out} && llamafactory-cli train {YAML_NAME}",
        f"  3. The LoRA adapter lands in {out / 'saves' / 'lora'} (PEFT format): load it on the same base",
        f"     ({base}) in SARLANG Studio, or merge it (sarlang_core.train.merge.merge_adapter).",
        "",
        f"Base model: {base} ({family}); LoRA rank {config.lora_r}, alpha {config.lora_alpha}, "
        f"dropout {config.lora_dropout}, on the {where}.",
        "Data:",
        *(f"  {n}" for n in data.notes),
        f"  train on: {', '.join(data.train)}" + (f"; evaluate on: {', '.join(data.eval)}" if data.eval else ""),
        f"  pipeline: {images}",
        "",
        "What differs from the SARLANG Studio run:",
        *(f"  - {d}" for d in differs),
        "",
    ]
    return "\n".join(lines)
