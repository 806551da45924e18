"""The thread pool the numba row kernels run on: created at first use, forgotten after a fork."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

ROWS_PER_TASK = 16  # image rows per kernel task; the kernels' work buffers are sized by it


def cpu_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class RowPool:
    """Runs a row kernel over an image's row tasks on a lazily created thread pool.

    The kernels are serial njit functions that release the GIL: this gives the same speed as
    numba's prange, compiles about 3x faster, and is safe to call from several threads at once
    (numba's default workqueue layer is not). Tasks are independent, so results do not depend
    on how they are split.
    """

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._fork_hook = False

    @property
    def threads(self) -> int:
        return self._threads or cpu_threads()

    @property
    def started(self) -> bool:
        return self._executor is not None

    def reset(self) -> None:
        """Forget the executor (a forked child has none of the parent's threads)."""
        self._executor = None

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                if not self._fork_hook and hasattr(os, "register_at_fork"):
                    os.register_at_fork(after_in_child=self.reset)
                    self._fork_hook = True
                self._executor = ThreadPoolExecutor(self.threads, thread_name_prefix="sarlang-filter")
            return self._executor

    def run_rows(self, kernel: Callable, h: int, *args) -> None:
        """``kernel(*args, task_lo, task_hi)`` over the row tasks of an h-row image."""
        ntask = (h + ROWS_PER_TASK - 1) // ROWS_PER_TASK
        nthreads = self.threads
        if nthreads == 1 or ntask < 4:
            kernel(*args, 0, ntask)
            return
        executor = self._get()
        nchunk = min(ntask, 4 * nthreads)  # a few chunks per thread evens out slow-path rows
        edges = [ntask * i // nchunk for i in range(nchunk + 1)]
        futures = [executor.submit(kernel, *args, lo, hi) for lo, hi in zip(edges, edges[1:], strict=False)]
        for f in futures:
            f.result()


POOL = RowPool()
