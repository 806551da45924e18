"""After a LoRA run: merge its adapter into a model folder, export it for LLaMA-Factory, register it
(the chat and the benchmark window list it at once), and line it up against its base in benchmarks.

    merge_run("runs/lora-1", "models/qwen3b-sar")           # a standalone model folder (safetensors)
    register_run("runs/lora-1", "qwen3b-sar-lora")          # -> the registry file written
    configs = benchmark_configs("runs/lora-1", "project.db", task="vqa")   # base/LoRA x raw/preprocessed
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, List, Optional, Union

from ..errors import TrainError
from ..evaluate.run_config import BackendSpec, DatasetSpec, RunConfig
from ..train import runs
from ..train.config import TrainConfig

PathLike = Union[str, Path]


def _finished_adapter(run_dir: PathLike) -> Path:
    adapter = Path(run_dir) / runs.ADAPTER
    if not (adapter / "adapter_config.json").is_file():
        state = runs.read_state(run_dir).get("status", "missing")
        raise TrainError(f"{run_dir}: has no adapter yet (the run is {state}); finish or resume it first")
    return adapter


def _base_of(run_dir: PathLike) -> Path:
    from ..train.plan import resolve_model

    config = TrainConfig.load(Path(run_dir) / runs.CONFIG)
    return resolve_model(config.model)[0]


def merge_run(run_dir: PathLike, out_dir: PathLike, *, progress=None, cancel=None) -> Path:
    """The run's base model with its adapter merged in, as a model folder of its own."""
    from ..train.merge import merge_adapter

    return merge_adapter(_base_of(run_dir), _finished_adapter(run_dir), out_dir, progress=progress, cancel=cancel)


def export_run(run_dir: PathLike, out_dir: PathLike) -> Path:
    """A LLaMA-Factory YAML (+ dataset) reproducing the run's config; returns the YAML's path."""
    from ..train.llamafactory import export_llamafactory

    return export_llamafactory(run_dir, out_dir)


def register_run(run_dir: PathLike, name: str, *, registry: Optional[str] = None, replace: bool = False) -> Path:
    """Add the run's adapter (on its base) to the model registry, with its data, pipeline and config."""
    from ..vlm.registry_write import register_model

    adapter = _finished_adapter(run_dir)
    config = TrainConfig.load(Path(run_dir) / runs.CONFIG)
    try:
        pipeline = json.loads((Path(run_dir) / runs.PIPELINE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pipeline = None
    meta = {"run": str(Path(run_dir).resolve()), "base": str(_base_of(run_dir)), "dataset": config.dataset,
            "pipeline": pipeline, "config": config.to_dict(), "steps": runs.read_state(run_dir).get("step")}
    return register_model(name, _base_of(run_dir), adapter=adapter, notes=f"LoRA from {Path(run_dir).name}",
                          meta=meta, registry=registry, replace=replace)


def benchmark_configs(run_dir: PathLike, dataset: str, *, task: str = "vqa", split: str = "test",
                      images: Optional[str] = None, limit: Optional[int] = None) -> List[RunConfig]:
    """The paper's comparison for this adapter: base and base + LoRA, each on raw and on preprocessed
    images (the run's Pipeline; the paper's chain when the run trained on images as stored)."""
    from ..preprocess.pipeline import Pipeline

    adapter = _finished_adapter(run_dir)
    base = _base_of(run_dir)
    try:
        pipeline: Any = json.loads((Path(run_dir) / runs.PIPELINE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pipeline = None
    pipeline = pipeline if pipeline is not None else Pipeline().to_dict()
    ds = DatasetSpec(source=dataset, images=images, split=split, limit=limit)
    name = Path(run_dir).name
    out = []
    for label, adapter_path in ((base.name, None), (f"{base.name}+{name}", str(adapter))):
        backend = BackendSpec(kind="local", model=str(base), adapter=adapter_path, label=label)
        for tag, pipe in (("raw", None), ("preprocessed", pipeline)):
            out.append(RunConfig(name=f"{label} {task} {tag}", task=task, backend=backend, dataset=ds, pipeline=pipe))
    return out
