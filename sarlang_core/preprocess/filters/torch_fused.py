"""The torch filters fused into a few GPU kernels by torch.compile.

Eagerly, a 7 x 7 refined Lee is ~400 elementwise kernels over whole-tile tensors: on a GPU the
launches and the memory traffic between them, not the arithmetic, set the speed. Compiled
(inductor: Triton kernels on CUDA), the 49 window offsets and the statistics fuse into a few
kernels that read the tile a handful of times. Shapes are dynamic, so tiles of any size share one
compilation per filter.

Used on CUDA; eager elsewhere (on the CPU numba is the fast path, and the torch CPU path exists to
check the formulas). SARLANG_FILTER_COMPILE=0 turns it off, =1 compiles on any device (tests);
SARLANG_COMPILE_BACKEND picks the torch.compile backend (the tests' "eager" traces without code
generation). A compiler that fails falls back to the eager function for the rest of the process,
with the reason in ``fused_note()``; out of memory and a lost GPU are the caller's, as eagerly.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Dict

log = logging.getLogger(__name__)

ENV_COMPILE = "SARLANG_FILTER_COMPILE"
ENV_BACKEND = "SARLANG_COMPILE_BACKEND"
_compiled: Dict[tuple, Callable] = {}     # (function, backend) -> compiled, guarded
_note = ""


def fused_note() -> str:
    """Why the filters run eagerly on the GPU after a compiler failure, else ''."""
    return _note


def _wanted(device) -> bool:
    flag = os.environ.get(ENV_COMPILE, "auto").strip().lower()
    if flag in ("0", "off", "no") or _note:
        return False
    return flag in ("1", "on", "yes") or str(device).startswith("cuda")


def fused(fn: Callable, device) -> Callable:
    """``fn`` compiled for tensors on ``device`` where that is wanted, else ``fn`` itself."""
    if not _wanted(device):
        return fn
    import torch

    backend = os.environ.get(ENV_BACKEND, "") or "inductor"
    run = _compiled.get((fn, backend))
    if run is None:
        try:
            run = _compiled[(fn, backend)] = _guarded(fn, torch.compile(fn, dynamic=True, backend=backend))
        except torch._dynamo.exc.TorchDynamoException as exc:    # an unknown backend
            _compiler_failed(exc)
            return fn
    return run


def _compiler_failed(exc: BaseException) -> None:
    global _note
    cause = getattr(exc, "inner_exception", None) or exc     # BackendCompilerFailed wraps the compiler's error
    first = str(cause).strip().splitlines()[0][:160] if str(cause).strip() else ""
    _note = f"compiling the GPU filters failed ({type(cause).__name__}: {first})"
    log.warning("%s; they run eagerly from now on", _note)


def _guarded(fn: Callable, compiled: Callable) -> Callable:
    def run(*args):
        import torch

        try:
            return compiled(*args)
        except torch._dynamo.exc.TorchDynamoException as exc:   # the compiler's (a GPU fault is not one)
            _compiler_failed(exc)
            return fn(*args)
    return run
