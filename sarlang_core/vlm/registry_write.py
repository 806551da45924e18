"""Adding models to the registry file and removing them (reading it is ``models.load_registry``).

    register_model("qwen3b-sar", "models/qwen2.5-vl-3b", adapter="runs/r1/adapter",
                   meta={"run": "runs/r1", "dataset": "project.db", "pipeline": {...}, "config": {...}})
    unregister_model("qwen3b-sar")

The folders are checked first (``inspect_model``; an adapter against its base): a folder that
cannot be used never gets an entry. The file is read, changed in memory and written whole through
``write_text_atomic``: other entries, their unknown keys and the file's other top-level keys stay
as they were, and a crash leaves the old file or the new one. Paths are stored absolute.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..atomic import write_text_atomic
from ..errors import ModelError
from .models import default_registry_path, inspect_model, load_registry

PathLike = Union[str, os.PathLike]
TRAINED_KEYS = ("base", "dataset", "pipeline", "config", "run")


def _read(source: Path) -> Tuple[Dict[str, Any], List[Any]]:
    """The registry file's JSON object and its "models" list ({"models": []} when there is no file).
    A file that load_registry would refuse is refused here too: it is never written over."""
    if not source.exists():
        return {"models": []}, []
    load_registry(source)                        # ModelError: unreadable, duplicate names, bad entries
    data = json.loads(source.read_text(encoding="utf-8"))
    return data, data["models"]


def _write(source: Path, data: Dict[str, Any]) -> None:
    try:
        write_text_atomic(source, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ModelError(f"{source}: the model registry cannot be written ({exc})") from exc


def _source(registry: Optional[Union[str, os.PathLike]]) -> Path:
    return Path(registry).expanduser() if registry is not None else default_registry_path()


def register_model(name: str, path: PathLike, *, adapter: Optional[PathLike] = None, notes: str = "",
                   meta: Optional[Dict[str, Any]] = None, registry: Optional[PathLike] = None,
                   replace: bool = False) -> Path:
    """Add ``name`` (base folder ``path``, optional LoRA ``adapter``) to the registry file and
    return the file's path. ``meta`` (base, dataset, pipeline, config, run: how it was trained) is
    stored under "trained". A name already there is a ModelError unless ``replace`` (the entry
    is then replaced where it stands)."""
    if not isinstance(name, str) or not name.strip():
        raise ModelError("a registry entry needs a name")
    name = name.strip()
    base = inspect_model(path)
    if base.kind == "adapter":
        raise ModelError(f"{base.path}: is a LoRA adapter; register its base as the path and it as the adapter")
    if base.kind == "onnx" and adapter is not None:
        raise ModelError(f"{base.path}: an ONNX export has its adapter merged in: register it without one")
    entry: Dict[str, Any] = {"name": name, "path": str(base.path.resolve())}
    if adapter is not None:
        entry["adapter"] = str(inspect_model(adapter, base=base).path.resolve())
    if notes:
        entry["notes"] = str(notes)
    if meta is not None:
        if not isinstance(meta, dict):
            raise ModelError(f"meta must be a dict ({', '.join(TRAINED_KEYS)}), got {type(meta).__name__}")
        try:
            entry["trained"] = json.loads(json.dumps(meta))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"meta cannot be stored as JSON ({exc})") from exc
    source = _source(registry)
    data, models = _read(source)
    at = next((i for i, item in enumerate(models) if item["name"] == name), None)
    if at is not None and not replace:
        raise ModelError(f"{source}: a model named {name!r} is already registered ({models[at]['path']}); "
                         "choose another name or replace it")
    if at is None:
        models.append(entry)
    else:
        models[at] = entry
    data["models"] = models
    _write(source, data)
    return source


def unregister_model(name: str, registry: Optional[PathLike] = None) -> Path:
    """Remove the entry ``name`` (its folders are left alone) and return the registry file's path."""
    source = _source(registry)
    if not source.exists():
        raise ModelError(f"{source}: model registry not found")
    data, models = _read(source)
    kept = [item for item in models if item["name"] != name]
    if len(kept) == len(models):
        known = ", ".join(item["name"] for item in models) or "none"
        raise ModelError(f"no model named {name!r} in {source} (known: {known})")
    data["models"] = kept
    _write(source, data)
    return source
