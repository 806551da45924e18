"""The installed models and the backends made from them, for the CLI and the GUI alike.

    choices = registered_models()                  # [(label, name)] from the model registry
    backend = open_backend("qwen3b-sar")           # a registry name, a model folder, or
    backend = open_backend("sar-vlm", endpoint="http://gpu-box:8000/v1")   # a served model
    rows = check_models()                          # each entry inspected (RegistryCheck)
"""

from __future__ import annotations

import logging

from ..errors import ModelError
from ..vlm.backend import GenerationConfig, VLMBackend
from ..vlm.models import RegistryCheck, check_registry, load_registry

__all__ = ["GenerationConfig", "VLMBackend", "RegistryCheck", "registered_models", "check_models", "open_backend",
           "backend_for_choice", "training_pipeline_note", "export_onnx_model"]

log = logging.getLogger(__name__)

REGISTRY_PREFIX = "registry:"


def registered_models(registry: str | None = None) -> list[tuple[str, str]]:
    """(label, name) of each registered model: 'name' or 'name + adapter'. ModelError when a
    registry named by ``registry`` or $SARLANG_MODELS is missing or malformed."""
    return [(e.name + (" + adapter" if e.adapter else ""), e.name) for e in load_registry(registry)]


def check_models(registry: str | None = None) -> list[RegistryCheck]:
    """Every registry entry inspected: its ModelInfo, or the ModelError that stops it."""
    return check_registry(registry)


def open_backend(model: str | None = None, *, adapter: str | None = None, endpoint: str | None = None,
                 registry: str | None = None, api_key: str | None = None, timeout: float = 60.0) -> VLMBackend:
    """A backend, not yet loaded: ``endpoint`` given, the OpenAI-compatible server serving ``model``;
    otherwise ``model`` is a model folder or a registry name (none: the first registered model)."""
    from ..vlm.factory import make_backend

    return make_backend(model, adapter=adapter, endpoint=endpoint, registry=registry, api_key=api_key,
                        timeout=timeout)


def backend_for_choice(key: str) -> VLMBackend:
    """The backend for a model picker's key: 'registry:NAME' or a model folder."""
    if key.startswith(REGISTRY_PREFIX):
        return open_backend(key[len(REGISTRY_PREFIX):])
    return open_backend(key)


def training_pipeline_note(key: str, current) -> str:
    """For a registered fine-tuned model ('registry:NAME'): a note when the view's Pipeline
    (``current``) differs from the one its adapter was trained through ("" when they agree or
    nothing is recorded). A model answers best on images prepared as it was trained."""
    from ..preprocess.pipeline import Pipeline

    if not key.startswith(REGISTRY_PREFIX):
        return ""
    try:
        trained = load_registry().get(key[len(REGISTRY_PREFIX):]).trained
    except Exception:   # the registry changed under us: nothing to say
        return ""
    if not trained or "pipeline" not in trained:
        return ""
    recorded = trained["pipeline"]
    if recorded is None:
        return "trained on images as stored (no preprocessing); the view preprocesses them"
    try:
        pipeline = Pipeline.from_dict(recorded)
    except Exception:
        return ""
    if pipeline == current:
        return ""
    return f"trained on {pipeline.describe()}; the view shows {current.describe()}"


def export_onnx_model(model: str, out: str, *, adapter: str | None = None, register_as: str | None = None,
                      registry: str | None = None, progress=None, cancel=None) -> dict:
    """Export a model folder or registered model (its adapter merged) for ONNX Runtime into ``out``;
    with ``register_as``, add the export to the registry under that name, keeping how the source was
    trained (so the pipeline note still applies). Returns what was done (paths, check, entry)."""
    import json

    from ..vlm.factory import resolve_model
    from ..vlm.onnx_export import export_onnx
    from ..vlm.onnx_manifest import MANIFEST
    from ..vlm.registry_write import register_model

    path, entry_adapter = resolve_model(model, registry)
    entries = _entries(registry)
    if register_as and any(e.name == register_as for e in entries):
        raise ModelError(f"a model named {register_as!r} is registered already: choose another --register name")
    trained = next((e.trained for e in entries if e.name == model), None)
    folder = export_onnx(path, out, adapter=adapter or entry_adapter, progress=progress, cancel=cancel)
    done: dict = {"folder": str(folder), "check": json.loads((folder / MANIFEST).read_text())["check"]}
    if register_as:
        done["registry"] = str(register_model(register_as, folder, meta=trained, registry=registry,
                                              notes=f"ONNX export of {model}"))
        done["registered_as"] = register_as
    return done


def _entries(registry: str | None):
    try:
        return load_registry(registry).entries
    except Exception:   # an unreadable registry: resolve_model has said so already where it matters
        return ()
