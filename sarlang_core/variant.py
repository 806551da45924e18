"""Which variant of SARLANG Studio this is: full (with torch) or field (without it).

The field build (packaging/variants.py) leaves out torch, transformers, peft and accelerate.
What needs them (local transformers models, fine-tuning, per-word maps, dataset similarity)
calls :func:`require_full` first, so a field install says plainly what to get instead of
failing with an ImportError deep inside a library.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Type

from .errors import SarlangError

__all__ = ["has_torch", "require_full", "FieldVariantError"]

_FULL_STACK = ("torch", "transformers")


class FieldVariantError(SarlangError):
    """A feature of the full variant was asked for in a field install (no torch)."""


def has_torch() -> bool:
    """Whether torch and transformers can be imported here (checked without importing them)."""
    try:
        return all(find_spec(name) is not None for name in _FULL_STACK)
    except (ImportError, ValueError):   # a module with a broken __spec__ counts as absent
        return False


def require_full(feature: str, error: Type[SarlangError] = FieldVariantError) -> None:
    """Raise ``error`` naming ``feature`` when this install has no torch (the field variant)."""
    if has_torch():
        return
    raise error(f"{feature} needs the full variant of SARLANG Studio (with torch); this is the field "
                "variant, which chats with ONNX exports (sarlang-cli export-onnx, run in a full install) "
                "or an OpenAI-compatible endpoint")


_FULL_ONLY_MODULES = {"torch", "torchvision", "transformers", "peft", "accelerate", "sentence_transformers"}


def field_message(exc: BaseException) -> "str | None":
    """For an ImportError of a full-only library (a path :func:`require_full` does not guard yet):
    the sentence to show instead of the traceback; None for any other error."""
    name = getattr(exc, "name", None) or ""
    if not isinstance(exc, ImportError) or name.split(".")[0] not in _FULL_ONLY_MODULES:
        return None
    return (f"this needs the full variant of SARLANG Studio ({name} is not part of this install, "
            "the field variant)")
