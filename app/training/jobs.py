"""The fine-tuning window's work off the UI thread (run on the workers' lanes): each reads files
or loads a tokenizer, so none may run on the UI thread."""

from __future__ import annotations

from pathlib import Path
from typing import List

from sarlang_core.services import training


def prepare_start(config, choice, run_dir: str):
    """Worker side: the Pipeline JSON (a store's own needs the store) and the command."""
    pipeline_json = training.pipeline_for(choice, config.dataset)
    return training.run_command(config, pipeline_json, run_dir), []


def prepare_resume(run_dir: str):
    return training.resume_command(run_dir), training.read_events(run_dir)


def preview(config, choice, count: int, progress=None, cancel=None):
    return training.preview_data(config, training.pipeline_for(choice, config.dataset), count=count,
                                 progress=progress, cancel=cancel)


def read_overlays(run_dirs: List[str]):
    return [(Path(d).name, training.read_events(d)) for d in run_dirs]
