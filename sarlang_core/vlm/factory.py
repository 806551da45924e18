"""Pick a backend from what a user names: a registry entry, a model folder, or an endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..errors import ModelError


def make_backend(model: Optional[str] = None, *, adapter: Optional[str] = None, endpoint: Optional[str] = None,
                 registry: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 60.0):
    """``endpoint`` given: an OpenAI-compatible server serving ``model``. Otherwise ``model`` is a
    folder, or the name of an entry in the model registry (which may bring its adapter); a folder
    exported by ``sarlang-cli export-onnx`` runs on ONNX Runtime (OnnxBackend), any other on torch."""
    if endpoint:
        from .openai_backend import OpenAIBackend

        if not model:
            raise ModelError("--endpoint needs --model: the name of the model the server serves")
        return OpenAIBackend(endpoint, model, api_key=api_key, timeout=timeout)
    from .models import inspect_model

    path, entry_adapter = resolve_model(model, registry)
    if inspect_model(path).kind == "onnx":
        from .onnx_backend import OnnxBackend

        if adapter or entry_adapter:
            raise ModelError(f"{path}: an ONNX export cannot take an adapter: export the base with --adapter "
                             "(`sarlang-cli export-onnx BASE --adapter ADAPTER --out DIR`)")
        return OnnxBackend(path)
    from .local import LocalBackend

    return LocalBackend(path, adapter or entry_adapter)


def resolve_model(model: Optional[str], registry: Optional[str] = None):
    """(model folder, adapter folder or None) for a folder path or a registry entry name."""
    from .models import RegistryEntry, load_registry

    entries: Sequence[RegistryEntry] = ()
    try:
        entries = load_registry(registry).entries
    except ModelError:
        if registry:
            raise
    if not model:
        if not entries:
            raise ModelError("no model given and the model registry is empty: pass --model FOLDER, or "
                             "add a model as models/README.md explains")
        first = entries[0]
        return first.path, first.adapter
    for entry in entries:
        if entry.name == model:
            return entry.path, entry.adapter
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser()), None
    known = ", ".join(e.name for e in entries) or "none registered"
    raise ModelError(f"{model}: neither a model folder nor a registered model ({known})")
