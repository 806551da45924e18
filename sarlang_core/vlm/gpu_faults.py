"""Which torch errors mean the GPU itself failed (as opposed to the model, the input or memory)."""

from __future__ import annotations

# CUDA's own words for a device that is gone or whose context is ruined: after these no further
# CUDA call in the process can be trusted (unlike out of memory, which a smaller batch fixes).
_LOST = ("cuda error", "cuda driver error", "cuda-capable device", "cudaerrordevicesunavailable",
         "gpu is lost", "unspecified launch failure", "illegal memory access", "ecc error", "nvml")


def is_device_lost(exc: BaseException) -> bool:
    """True for a CUDA fault that leaves the GPU unusable; False for out of memory and the rest."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return False
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(words in text for words in _LOST)
