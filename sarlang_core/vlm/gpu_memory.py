"""What a torch model's GPU holds and has free: the chat's memory readout and the benchmark's
batch sizing (evaluate/batch_fit.py) read it here."""

from __future__ import annotations

from typing import Dict, Optional


def on_cuda(device: Optional[str]) -> bool:
    import torch

    return (device or "").startswith("cuda") and torch.cuda.is_available()


def memory_report(device: Optional[str]) -> Optional[Dict[str, float]]:
    """Allocated / reserved / peak MB on ``device``, or None off the GPU."""
    import torch

    if not on_cuda(device):
        return None
    mb = 2 ** 20
    return {"allocated_mb": torch.cuda.memory_allocated(device) / mb,
            "reserved_mb": torch.cuda.memory_reserved(device) / mb,
            "peak_mb": torch.cuda.max_memory_allocated(device) / mb}


class CudaMemoryMeter:
    """Free memory and one batch's peak on a CUDA device (torch's caching allocator counted in:
    memory it reserved but does not use is free for the next batch)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._base = 0

    def free_bytes(self) -> int:
        import torch

        free, _total = torch.cuda.mem_get_info(self.device)
        return int(free + torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device))

    def start(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self._base = torch.cuda.memory_allocated(self.device)

    def peak_bytes(self) -> int:
        import torch

        torch.cuda.synchronize(self.device)
        return int(torch.cuda.max_memory_allocated(self.device) - self._base)


def memory_meter(device: Optional[str]) -> Optional[CudaMemoryMeter]:
    return CudaMemoryMeter(str(device)) if on_cuda(device) else None
