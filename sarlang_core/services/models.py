"""The installed models and the backends made from them, for the CLI and the GUI alike.

    choices = registered_models()                  # [(label, name)] from the model registry
    backend = open_backend("qwen3b-sar")           # a registry name, a model folder, or
    backend = open_backend("sar-vlm", endpoint="http://gpu-box:8000/v1")   # a served model
    rows = check_models()                          # each entry inspected (RegistryCheck)
"""

from __future__ import annotations

import logging

from ..vlm.backend import GenerationConfig, VLMBackend
from ..vlm.models import RegistryCheck, check_registry, load_registry

__all__ = ["GenerationConfig", "VLMBackend", "RegistryCheck", "registered_models", "check_models", "open_backend",
           "backend_for_choice"]

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
