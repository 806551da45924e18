"""Hooks as context managers that always let go (the pytorch-grad-cam way): whatever happens
inside the ``with``, the hook is removed, the attention implementation and the adapter are as
they were before."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .layout import VisualLayout


def hf_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (or the model itself)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


class VisualTokens:
    """The visual tokens of the last forward pass, as a leaf that gradients flow into.

    The hook replaces the tokens with a detached copy that requires grad, so a backward pass
    stops at the tokens (the vision tower is not walked again for Grad-CAM) and works when the
    model's own parameters are frozen (an adapter loaded for inference)."""

    def __init__(self) -> None:
        self.tokens: Any = None

    def hook(self, layout: VisualLayout):
        def on_output(_module: Any, _args: Any, output: Any) -> Any:
            tokens = layout.read(output)
            leaf = tokens.detach().requires_grad_(True)
            self.tokens = leaf
            return layout.write(output, leaf)
        return on_output


@contextmanager
def visual_tokens(model: Any, layout: VisualLayout) -> Iterator[VisualTokens]:
    """Capture the visual tokens of forward passes inside the block."""
    captured = VisualTokens()
    handle = layout.module(hf_model(model)).register_forward_hook(captured.hook(layout))
    try:
        yield captured
    finally:
        handle.remove()


@contextmanager
def eager_attention(model: Any) -> Iterator[None]:
    """Eager attention inside the block (SDPA and flash attention return no attention weights)."""
    hf = hf_model(model)
    before = getattr(hf.config, "_attn_implementation", None) or "sdpa"
    if before == "eager":
        yield
        return
    hf.set_attn_implementation("eager")
    try:
        yield
    finally:
        hf.set_attn_implementation(before)


@contextmanager
def adapter_enabled(model: Any, enabled: bool) -> Iterator[None]:
    """``enabled`` False: the base model's behaviour under a PEFT adapter (no-op without one)."""
    disable = getattr(model, "disable_adapter", None)
    if enabled or disable is None or not hasattr(model, "peft_config"):
        yield
        return
    with disable():
        yield
