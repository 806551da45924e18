"""Which ONNX Runtime execution provider a session really runs on.

``onnxruntime-gpu`` lists the CUDA provider as available on any machine, also one without a GPU
or without the CUDA 13 / cuDNN 9 libraries it loads (onnxruntime-gpu 1.31); asked for it there, ONNX Runtime logs an
error and silently runs on the CPU (FIELD_NOTES). So the first session is made with CUDA first
and then asked which providers it got. When it fell back, the reason is found by loading the
provider's library the way ONNX Runtime does (the loader names the missing library) and the
note says it in one sentence; ``device="cuda"`` turns the same finding into a ModelError.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, List, Optional

from ..errors import ModelError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
FORCE_ENV = "SARLANG_ORT_DEVICE"      # cpu | cuda | auto: overrides the backend's choice (support, tests)


def cuda_failure_reason() -> str:
    """Why the CUDA provider does not load here, from the dynamic loader (or a general reason)."""
    import onnxruntime as ort

    capi = Path(ort.__file__).parent / "capi"
    libs = [str(p) for name in ("libonnxruntime_providers_cuda.so", "onnxruntime_providers_cuda.dll")
            for p in capi.glob(name)]
    if not libs:
        return ("this ONNX Runtime has no CUDA provider (a CPU-only onnxruntime, or a field build made "
                "without SARLANG_FIELD_CUDA=1)")
    try:
        ctypes.CDLL(libs[0])
    except OSError as exc:
        return f"its CUDA libraries do not load ({str(exc).split(':')[0].strip()} is missing)" \
            if "cannot open shared object" in str(exc) else f"its CUDA libraries do not load ({exc})"
    return "no usable CUDA GPU was found"


class SessionMaker:
    """Makes InferenceSessions on one provider, chosen at the first session."""

    def __init__(self, device: str = "auto") -> None:
        import onnxruntime as ort

        self.ort = ort
        self.requested = os.environ.get(FORCE_ENV, device) or device
        if self.requested not in ("auto", "cpu", "cuda"):
            raise ModelError(f"{FORCE_ENV} must be auto, cpu or cuda; got {self.requested!r}")
        self.providers: Optional[List[str]] = None
        self.device = "cpu" if self.requested == "cpu" else "cuda?"
        self.note: Optional[str] = None

    def _options(self) -> Any:
        so = self.ort.SessionOptions()
        so.log_severity_level = 3        # errors only: a CUDA fallback is reported by ``note``
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        return so

    def _first(self, path: Path) -> Any:
        if self.requested == "cpu" or CUDA not in self.ort.get_available_providers():
            if self.requested == "cuda":
                raise ModelError(f"device cuda was asked for but {cuda_failure_reason()}")
            self.providers, self.device = [CPU], "cpu"
            return self.ort.InferenceSession(str(path), self._options(), providers=[CPU])
        self.ort.set_default_logger_severity(4)   # the failed CUDA load is reported by ``note``, once
        try:
            session = self.ort.InferenceSession(str(path), self._options(), providers=[CUDA, CPU])
        finally:
            self.ort.set_default_logger_severity(2)
        if session.get_providers()[0] == CUDA:
            self.providers, self.device = [CUDA, CPU], "cuda"
            return session
        reason = cuda_failure_reason()
        if self.requested == "cuda":
            raise ModelError(f"device cuda was asked for but the CUDA provider did not start: {reason}")
        self.providers, self.device = [CPU], "cpu"
        self.note = f"running on the CPU: ONNX Runtime's CUDA provider did not start ({reason})"
        return session

    def session(self, path: Path) -> Any:
        try:
            if self.providers is None:
                return self._first(path)
            return self.ort.InferenceSession(str(path), self._options(), providers=self.providers)
        except ModelError:
            raise
        except Exception as exc:   # onnxruntime's own exception classes (InvalidGraph, Fail, ...)
            raise ModelError(f"{path}: ONNX Runtime cannot load this graph ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:300]})") from exc
