"""Speckle filters: refined Lee (SNAP semantics), boxcar, median, Lee, Frost, Gamma-MAP.

Common semantics
----------------
* Input: a 2-D real array (float or integer). Output: float64 for float64 input, else float32,
  same shape; a new array, the input is never modified.
* Invalid pixels are the non-finite ones and, when ``nodata`` is given, those equal to it
  (compared in the band's own dtype). They are copied to the output unchanged and never enter
  a neighbour's statistics. Pixels outside the image are treated exactly like invalid ones, which
  makes tiled filtering with a ``filter_halo`` context equal whole-image filtering.
* Where a window is incomplete (border, nodata) each filter uses the valid pixels of its window.
* Computation is float64 throughout; only the final value is rounded to the output type.

Numba kernels run on the CPU (row tasks on a thread pool, GIL released); a torch path exists for
refined Lee, boxcar, Lee, Frost and Gamma-MAP and is used on CUDA (see ``apply_filter``).
"""

from __future__ import annotations

import os


def _default_numba_cache_dir() -> str:
    try:
        from platformdirs import user_cache_dir

        base = user_cache_dir("sarlang-studio")
    except ImportError:  # platformdirs is a dependency; keep working without it anyway
        base = os.path.join(os.path.expanduser("~"), ".cache", "sarlang-studio")
    return os.path.join(base, "numba")


# Must happen before numba is imported: the package dir may be read-only (site-packages,
# PyInstaller), and numba would then not cache the compiled kernels at all.
os.environ.setdefault("NUMBA_CACHE_DIR", _default_numba_cache_dir())

import sys  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from numbers import Integral, Real  # noqa: E402

if "numba" in sys.modules:  # imported earlier by someone else: its config has been read already
    from numba.core import config as _nb_config

    if not _nb_config.CACHE_DIR:
        _nb_config.CACHE_DIR = os.environ["NUMBA_CACHE_DIR"]

import numpy as np  # noqa: E402

from sarlang_core.errors import PipelineError  # noqa: E402

from . import classic as _classic  # noqa: E402
from . import refined_lee as _rl  # noqa: E402

FILTERS = ("none", "boxcar", "median", "lee", "refined-lee", "frost", "gamma-map")
TORCH_FILTERS = ("boxcar", "lee", "refined-lee", "frost", "gamma-map")
DEVICES = ("auto", "cpu", "cuda", "torch-cpu")

ROWS_PER_TASK = _rl.ROWS_PER_TASK
_POOL = None
_POOL_LOCK = threading.Lock()


def _forget_pool():
    global _POOL
    _POOL = None  # a forked child has none of the parent's threads: start a new pool there


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _run_rows(kernel, h, *args):
    """Run ``kernel(*args, task_lo, task_hi)`` over the row tasks of an h-row image on a thread
    pool. The kernels are serial njit functions that release the GIL: this gives the same
    speed as numba's prange, compiles about 3x faster, and is safe to call from several threads
    at once (numba's default workqueue layer is not). Tasks are independent, so results do not
    depend on how they are split."""
    global _POOL
    ntask = (h + ROWS_PER_TASK - 1) // ROWS_PER_TASK
    nthreads = _threads()
    if nthreads == 1 or ntask < 4:
        kernel(*args, 0, ntask)
        return
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(nthreads, thread_name_prefix="sarlang-filter")
    nchunk = min(ntask, 4 * nthreads)  # a few chunks per thread evens out slow-path rows
    edges = [ntask * i // nchunk for i in range(nchunk + 1)]
    futures = [_POOL.submit(kernel, *args, lo, hi) for lo, hi in zip(edges, edges[1:])]
    for f in futures:
        f.result()


__all__ = [
    "FILTERS", "apply_filter", "boxcar", "filter_halo", "frost", "gamma_map", "lee", "median",
    "refined_lee", "warmup",
]


# ----------------------------------------------------------------------------- validation
def check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, Integral):
        raise PipelineError(f"filter window must be an odd integer >= 3, got {window!r}")
    window = int(window)
    if window < 3 or window % 2 == 0:
        raise PipelineError(f"filter window must be an odd integer >= 3, got {window}")
    return window


def check_looks(looks) -> float:
    if isinstance(looks, bool) or not isinstance(looks, Real) or not np.isfinite(looks) or looks <= 0:
        raise PipelineError(f"number of looks must be a finite number > 0, got {looks!r}")
    return float(looks)


def check_damping(damping) -> float:
    if (isinstance(damping, bool) or not isinstance(damping, Real) or not np.isfinite(damping)
            or damping < 0):
        raise PipelineError(f"Frost damping must be a finite number >= 0, got {damping!r}")
    return float(damping)


def check_band(band) -> np.ndarray:
    arr = np.asarray(band)
    if arr.ndim != 2:
        raise PipelineError(f"a speckle filter needs a 2-D band, got an array of shape {arr.shape}")
    if arr.dtype.kind == "c":
        raise PipelineError("complex band: filter the intensity I^2 + Q^2 (np.abs(band)**2)")
    if arr.dtype.kind not in "fiub":
        raise PipelineError(f"a speckle filter needs a real numeric band, got dtype {arr.dtype}")
    if not arr.dtype.isnative:  # e.g. big-endian data: the kernels want native floats
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _nodata_scalar(arr: np.ndarray, nodata):
    """nodata as a scalar of the band's dtype, or None when no pixel can equal it."""
    if nodata is None:
        return None
    try:
        nd = arr.dtype.type(nodata)
    except (OverflowError, ValueError, TypeError):
        return None
    if nd != nodata or nd != nd:  # not representable in an integer band, or NaN (invalid anyway)
        return None
    return nd


def prepare(band, nodata):
    """Kernel inputs: (source, has_nodata, nodata scalar, output pre-filled with the band).

    Float bands go to the kernels as they are (validity is tested there, in the band's dtype);
    other bands become float32 here (their output type) with nodata pixels set to NaN, so each
    kernel is compiled for two signatures only.
    """
    arr = check_band(band)
    out = np.array(arr, dtype=np.float64 if arr.dtype == np.float64 else np.float32, order="C",
                   copy=True)
    nd = _nodata_scalar(arr, nodata)
    if arr.dtype in (np.float32, np.float64):
        src = np.ascontiguousarray(arr)
        return src, nd is not None, nd if nd is not None else src.dtype.type(0), out
    src = out.copy()
    if nd is not None:
        src[arr == nd] = np.nan
    return src, False, np.float32(0), out


# ----------------------------------------------------------------------------- public filters
def refined_lee(band, *, nodata=None, snap_exact=False) -> np.ndarray:
    """Refined Lee (7 x 7, SNAP semantics; see refined_lee.py and REFINED_LEE.md).

    ``snap_exact`` reproduces two SNAP quirks: sigma_v^2 from the 5 smallest of only the first
    8 sub-areas, and 0 (instead of the window mean) where the window is perfectly flat.
    """
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        _run_rows(_rl.refined_lee_rows, out.shape[0], src, has_nd, nd, out, bool(snap_exact))
    return out


def boxcar(band, *, window=5, nodata=None) -> np.ndarray:
    """Mean of the valid pixels of the window."""
    return _moment(band, window, nodata, _classic.MODE_BOXCAR, 1.0)


def lee(band, *, window=5, looks=1.0, nodata=None) -> np.ndarray:
    """Lee (1980) MMSE filter for multiplicative speckle on intensity-like data.

    With local mean m and sample variance v of the window and sigma_v^2 = 1 / looks:
    ``varX = max(0, (v - m^2 sigma_v^2) / (1 + sigma_v^2))``, ``out = m + varX / v (p - m)``
    (``m`` where v == 0). Many looks -> identity; homogeneous areas -> local mean.
    """
    return _moment(band, window, nodata, _classic.MODE_LEE, check_looks(looks))


def gamma_map(band, *, window=5, looks=1.0, nodata=None) -> np.ndarray:
    """Gamma-MAP (Lopes et al. 1990). With Ci = sqrt(v) / m, Cu = 1/sqrt(L), Cmax = sqrt(2) Cu:

    Ci <= Cu: m; Ci >= Cmax: the pixel p; between: with a = (1 + Cu^2) / (Ci^2 - Cu^2) and
    B = a - L - 1, ``out = (B m + sqrt(m^2 B^2 + 4 a L m p)) / (2 a)``. m <= 0 gives m.
    """
    return _moment(band, window, nodata, _classic.MODE_GAMMA, check_looks(looks))


def frost(band, *, window=5, damping=2.0, nodata=None) -> np.ndarray:
    """Frost: ``out = sum(k_i p_i) / sum(k_i)`` over the valid pixels of the window with
    ``k_i = exp(-damping * Ci^2 * d_i)``, Ci^2 = v / m^2 of the window (0 where m <= 0) and d_i
    the Euclidean distance (pixels) to the centre. damping = 0 is the boxcar.
    """
    window = check_window(window)
    damping = check_damping(damping)
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        ody, odx, ocls, dist = _classic.frost_tables(window)
        _run_rows(_classic.frost_rows, out.shape[0], src, has_nd, nd, out, window, damping,
                  ody, odx, ocls, dist)
    return out


def median(band, *, window=5, nodata=None) -> np.ndarray:
    """Median of the valid pixels of the window (mean of the two middle ones for an even count)."""
    window = check_window(window)
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        if window <= 7:  # comparator network (a few hundred comparators at most)
            net_a, net_b, size = _classic.median_network(window)
            _run_rows(_classic.median_net_rows, out.shape[0], src, has_nd, nd, out, window, net_a,
                      net_b, size)
        else:  # sliding sorted window
            _run_rows(_classic.median_rows, out.shape[0], src, has_nd, nd, out, window)
    return out


def _moment(band, window, nodata, mode, looks):
    window = check_window(window)
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        _run_rows(_classic.moment_rows, out.shape[0], src, has_nd, nd, out, window, mode, looks)
    return out


# ----------------------------------------------------------------------------- dispatch
_CUDA_OK = None


def _cuda_driver_present() -> bool:
    """Whether an NVIDIA driver library loads: without one torch cannot see a GPU, and importing
    torch only to learn that costs ~1.5 s and ~300 MB of memory."""
    import ctypes

    names = ("nvcuda.dll",) if sys.platform == "win32" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_available() -> bool:
    """True when torch imports and sees a CUDA device (cached; imports torch only where an NVIDIA
    driver is installed)."""
    global _CUDA_OK
    if _CUDA_OK is None:
        if sys.platform == "darwin" or not _cuda_driver_present():
            _CUDA_OK = False
            return _CUDA_OK
        try:
            import torch

            _CUDA_OK = bool(torch.cuda.is_available())
        except Exception:  # no torch, or a broken CUDA install: the numba path still works
            _CUDA_OK = False
    return _CUDA_OK


def filter_halo(name, window=5) -> int:
    """Pixels of context a tile needs on each side for ``name`` to equal whole-image output."""
    if name not in FILTERS:
        raise PipelineError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    if name == "none":
        return 0
    if name == "refined-lee":
        return 3
    return check_window(window) // 2


# Measured on an H100 host (BENCHMARKS.md): a 1024² refined-Lee tile takes 14.7 ms through CUDA
# (copies included) against 6.9 ms on 16 CPU cores and ~30 ms on 2; numba wins from ~8 cores up.
CUDA_WINS_BELOW_CORES = 8


def prefer_cuda() -> bool:
    """Whether "auto" runs the torch CUDA path. ``SARLANG_FILTER_DEVICE=cpu|cuda`` overrides."""
    forced = os.environ.get("SARLANG_FILTER_DEVICE", "").lower()
    if forced in ("cpu", "numba"):
        return False
    if not cuda_available():
        return False
    return forced == "cuda" or (os.cpu_count() or 1) < CUDA_WINS_BELOW_CORES


def apply_filter(name, band, *, window=5, looks=1.0, damping=2.0, snap_exact=False, nodata=None,
                 device="auto") -> np.ndarray:
    """Run filter ``name`` (one of FILTERS); parameters a filter does not take are ignored.

    device: "auto" uses torch on CUDA when it is available, the filter has a torch path
    (TORCH_FILTERS) and the CPU is small enough for the GPU to win (see ``prefer_cuda``), else
    the numba kernels; "cpu" always numba; "cuda" torch on CUDA
    (PipelineError when CUDA is unavailable; filters without a torch path, i.e. median, run on
    numba); "torch-cpu" the torch path on the CPU (tests), median again on numba.
    """
    if name not in FILTERS:
        raise PipelineError(f"unknown filter {name!r}; choose one of {', '.join(FILTERS)}")
    if device not in DEVICES:
        raise PipelineError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if device == "cuda" and not cuda_available():
        raise PipelineError("device 'cuda' was asked for but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    if name == "none":
        arr = check_band(band)
        return np.array(arr, dtype=np.float64 if arr.dtype == np.float64 else np.float32, copy=True)
    if name in TORCH_FILTERS and (device in ("cuda", "torch-cpu") or (device == "auto" and prefer_cuda())):
        from . import torch_backend

        return torch_backend.apply(name, band, window=window, looks=looks, damping=damping,
                                   snap_exact=snap_exact, nodata=nodata,
                                   device="cpu" if device == "torch-cpu" else "cuda")
    if name == "refined-lee":
        return refined_lee(band, nodata=nodata, snap_exact=snap_exact)
    if name == "boxcar":
        return boxcar(band, window=window, nodata=nodata)
    if name == "median":
        return median(band, window=window, nodata=nodata)
    if name == "lee":
        return lee(band, window=window, looks=looks, nodata=nodata)
    if name == "frost":
        return frost(band, window=window, damping=damping, nodata=nodata)
    return gamma_map(band, window=window, looks=looks, nodata=nodata)


from .warmup import warmup  # noqa: E402
