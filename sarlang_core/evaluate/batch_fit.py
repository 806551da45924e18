"""How many samples a local model answers per generate call in a benchmark run.

A run asks for a fixed size (1..256) or "auto". "auto" on a GPU is measured, not guessed from the
model's config: the first batch is one sample, whose peak memory (above what the loaded model
holds) is taken as all per-sample, which gives a safe second size; the second batch's peak then
splits a batch's memory into a fixed part and a per-sample part, and the rest of the run is sized
to fill FILL of the memory that was free when the run started. Batches are formed from the
largest images and longest prompts first (generation.py), so the measured samples are the costly
ones. Out of memory halves the size for the rest of the run, fixed or auto. Off the GPU "auto" is
a small fixed batch (OFF_GPU_BATCH): on the CPU a batch of 4 answered 1.1x (Qwen2.5-VL-3B widths,
512² chips) to 1.9x (the tiny model) as many items/s as one at a time (BENCHMARKS.md), and host
memory is seldom what runs out first.
"""

from __future__ import annotations

import logging
from typing import Optional, Protocol, Union

log = logging.getLogger(__name__)

AUTO = "auto"
MAX_BATCH = 256
FILL = 0.8                  # of the free memory: answers longer than the measured ones need headroom
WINDOW = 4                  # batches' worth of samples prepared together and grouped by size and prompt
PROBE_WINDOW = 32           # samples prepared at once while the size is being measured
OFF_GPU_BATCH = 4


class MemoryMeter(Protocol):
    """The GPU memory a batch used (vlm/gpu_memory.py: CudaMemoryMeter)."""

    def free_bytes(self) -> int: ...          # what this process could still allocate
    def start(self) -> None: ...              # begin measuring a batch
    def peak_bytes(self) -> int: ...          # the batch's peak above what was allocated at start()


def parse_batch_size(value: Union[int, str]) -> Union[int, str]:
    """1..256 or "auto"; anything else raises ValueError with what is allowed."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    if isinstance(value, bool):
        raise ValueError(f"batch size must be 1..{MAX_BATCH} or 'auto', got {value!r}")
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"batch size must be 1..{MAX_BATCH} or 'auto', got {value!r}") from None
    if str(n) != str(value).strip() or not 1 <= n <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH} or 'auto', got {value!r}")
    return n


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


class BatchFit:
    """The current batch size ``n`` of a run, and a sentence on how it was chosen (``note``)."""

    def __init__(self, requested: Union[int, str] = 1, meter: Optional[MemoryMeter] = None) -> None:
        requested = parse_batch_size(requested)
        self.auto = requested == AUTO and meter is not None
        self.meter = meter if self.auto else None
        self.free = self.meter.free_bytes() if self.meter is not None else 0
        self._first_peak: Optional[int] = None      # the one-sample batch's peak, once measured
        if requested == AUTO and self.auto:
            self.n, self.note = 1, "auto: measuring the memory per sample"
        elif requested == AUTO:
            self.n, self.note = OFF_GPU_BATCH, f"auto: {OFF_GPU_BATCH} (no GPU memory to measure)"
        else:
            self.n = int(requested)
            self.note = f"{self.n} (as asked)"

    @classmethod
    def for_backend(cls, requested: Union[int, str], backend) -> "BatchFit":
        """A fit for ``backend``: its GPU memory meter when it has one (a torch model on CUDA)."""
        meter = backend.memory_meter() if hasattr(backend, "memory_meter") else None
        return cls(requested, meter)

    @property
    def measuring(self) -> bool:
        return self.auto and self.meter is not None

    @property
    def window(self) -> int:
        """How many samples to prepare and group at once."""
        return max(self.n * WINDOW, PROBE_WINDOW if self.measuring else 1)

    def begin(self) -> None:
        if self.measuring:
            assert self.meter is not None
            self.meter.start()

    def answered(self, size: int) -> None:
        """A batch of ``size`` samples went through: while measuring, size the next ones."""
        if not self.measuring:
            return
        assert self.meter is not None
        peak = max(int(self.meter.peak_bytes()), 1)
        budget = FILL * self.free
        if self._first_peak is None:
            if size != 1:
                return
            self._first_peak = peak
            self._set(budget / peak, f"{_gib(peak)} for one sample")
            if self.n > 1:
                return           # the second batch measures the per-sample part
        elif size >= 2:
            per = max((peak - self._first_peak) / (size - 1), peak / (4 * size), 1.0)
            fixed = max(self._first_peak - per, 0.0)
            self._set((budget - fixed) / per, f"{_gib(per)} per sample + {_gib(fixed)} per batch")
        else:
            return
        self.meter = None        # measured: the size stays (unless memory runs out)
        log.info("benchmark batch size: %s", self.note)

    def _set(self, fits: float, measured: str) -> None:
        self.n = max(1, min(MAX_BATCH, int(fits)))
        self.note = f"auto: {self.n} ({measured}, {_gib(self.free)} free)"

    def out_of_memory(self, size: int) -> None:
        """A batch of ``size`` ran out of memory: half of it from now on, measuring or not."""
        self.n = max(1, min(self.n, size // 2))
        self.meter = None
        self.note = (f"{self.n} (halved after running out of GPU memory at {size})" if size > 1
                     else "1 (out of GPU memory with one sample)")
        log.warning("out of GPU memory at a batch of %d: batches of %d from now on", size, self.n)
