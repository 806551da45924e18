"""How LocalBackend decodes: the reference loop, a static KV cache, or compiled decoding.

    reference  transformers' default (a cache that grows each token): today's path, the CPU default
    static     a KV cache allocated once per call at a bucketed length, no compilation
    compiled   the static cache plus the decoding step compiled with torch.compile; on CUDA in
               "reduce-overhead" mode (CUDA graphs), the GPU default: batch-1 decoding of a 3B
               model through ``generate`` is bound by Python and kernel launches (32.5 tokens/s
               on an H200, BENCHMARKS.md), which CUDA graphs remove

"auto" is compiled on CUDA and reference on the CPU (compiling costs ~40 s on the CPU for the
tiny test model and gains little where the matrix products dominate). SARLANG_DECODE overrides
"auto". The cache length is rounded up to ``CHAT_BUCKET`` tokens at batch 1 (``BATCH_BUCKET`` for
batches) so that a new question reuses the compiled step instead of recompiling it for every
prompt length; at batch 1 a longer cache costs little (its keys and values are ~150 MB a token
for a 3B model at 4,096 positions, against 6 GB of weights read per token).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ModelError

DECODE_MODES = ("auto", "reference", "static", "compiled")
ENV_DECODE = "SARLANG_DECODE"
# torch.compile backend for "compiled" (tests use "eager": dynamo's tracing without code generation)
ENV_COMPILE_BACKEND = "SARLANG_COMPILE_BACKEND"
CHAT_BUCKET = 4096
BATCH_BUCKET = 1024


def resolve_decode_mode(requested: str | None, device: str) -> str:
    """The mode a backend on ``device`` decodes with: ``requested``, else SARLANG_DECODE, else auto."""
    mode = (requested or os.environ.get(ENV_DECODE, "") or "auto").lower()
    if mode not in DECODE_MODES:
        raise ModelError(f"unknown decoding {mode!r}; choose one of {', '.join(DECODE_MODES)}")
    if mode == "auto":
        return "compiled" if device.startswith("cuda") else "reference"
    return mode


def cache_length(prompt_tokens: int, max_new_tokens: int, bucket: int = CHAT_BUCKET) -> int:
    """The static cache's length for a prompt and an answer budget: rounded up to ``bucket``."""
    need = prompt_tokens + max_new_tokens
    return -(-need // bucket) * bucket


@dataclass(frozen=True)
class DecodePlan:
    """``generate`` settings for one call in a mode."""

    mode: str
    device: str

    def apply(self, generation_config: Any, prompt_tokens: int, batch: int = 1) -> None:
        """Set the cache and compilation fields of ``generation_config`` (a copy owned by the call)."""
        if self.mode == "reference":
            return
        generation_config.cache_implementation = "static"
        generation_config.max_cache_len = cache_length(prompt_tokens, generation_config.max_new_tokens,
                                                       CHAT_BUCKET if batch == 1 else BATCH_BUCKET)
        if self.mode == "static":
            generation_config.disable_compile = True     # transformers compiles static caches on CUDA by itself
            return
        generation_config.disable_compile = False
        generation_config.compile_config = compile_config(self.device)


def compile_config(device: str) -> Any:
    """transformers' CompileConfig: CUDA graphs on the GPU; elsewhere compiled for the CPU too."""
    from transformers import CompileConfig

    backend = os.environ.get(ENV_COMPILE_BACKEND, "") or "inductor"
    on_gpu = device.startswith("cuda")
    kwargs: dict[str, Any] = {"backend": backend, "fullgraph": False}
    if not (on_gpu and backend == "inductor"):
        kwargs["mode"] = None     # "reduce-overhead" (CUDA graphs) is inductor's, on a GPU
    config: Any = CompileConfig(**kwargs)
    if not on_gpu:
        config._compile_all_devices = True   # transformers compiles on accelerators only, unless told
    return config


def describe(mode: str) -> str:
    """Words for the chat panel's model line."""
    return {"reference": "", "static": "static KV cache", "compiled": "compiled decoding"}.get(mode, mode)


WARM_UP_TOKENS = 4


def warm_up(backend) -> str:
    """Compile the decoding step now, with one short answer about a small grey image, so that the
    first question does not wait for the compiler (the chat's answers share its shapes: batch 1, a
    ``CHAT_BUCKET`` cache). When compiling fails, the backend decodes without it: the reason is
    returned for the panel ('' when all went well)."""
    import numpy as np

    from .backend import ChatTurn, GenerationConfig

    image = np.full((56, 56), 128, np.uint8)
    try:
        inputs = backend.prepare_inputs(image, [ChatTurn("user", "Describe the image.")])
        backend.generate_ids(inputs, GenerationConfig(max_new_tokens=WARM_UP_TOKENS, temperature=0.0), None)
    except Exception as exc:   # a compiler or CUDA-graph failure: today's decoding still answers
        backend.decode_mode = "reference"
        return f"compiled decoding did not start ({type(exc).__name__}: {str(exc)[:200]}); decoding without it"
    return ""
