"""The speckle filters on the CPU: numba row kernels on the shared row pool.

Importing this module imports (and so compiles or loads from cache) the kernel modules.
"""

from __future__ import annotations

import numpy as np

from . import classic as _classic
from . import refined_lee_kernel as _rl
from .checks import check_band, check_damping, check_looks, check_window, output_dtype, prepare
from .pool import POOL


def copy_band(band, *, nodata=None) -> np.ndarray:
    """The "none" filter: the band as the chain's float type."""
    arr = check_band(band)
    return np.array(arr, dtype=output_dtype(arr), copy=True)


def refined_lee(band, *, nodata=None, snap_exact=False) -> np.ndarray:
    """Refined Lee (7 x 7, SNAP semantics; see refined_lee_kernel.py and REFINED_LEE.md).

    ``snap_exact`` reproduces two SNAP quirks: sigma_v^2 from the 5 smallest of only the first
    8 sub-areas, and 0 (instead of the window mean) where the window is perfectly flat.
    """
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        POOL.run_rows(_rl.refined_lee_rows, out.shape[0], src, has_nd, nd, out, bool(snap_exact))
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
        POOL.run_rows(_classic.frost_rows, out.shape[0], src, has_nd, nd, out, window, damping,
                      ody, odx, ocls, dist)
    return out


def median(band, *, window=5, nodata=None) -> np.ndarray:
    """Median of the valid pixels of the window (mean of the two middle ones for an even count)."""
    window = check_window(window)
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        if window <= 7:  # comparator network (a few hundred comparators at most)
            net_a, net_b, size = _classic.median_network(window)
            POOL.run_rows(_classic.median_net_rows, out.shape[0], src, has_nd, nd, out, window, net_a,
                          net_b, size)
        else:  # sliding sorted window
            POOL.run_rows(_classic.median_rows, out.shape[0], src, has_nd, nd, out, window)
    return out


def _moment(band, window, nodata, mode, looks):
    window = check_window(window)
    src, has_nd, nd, out = prepare(band, nodata)
    if out.size:
        POOL.run_rows(_classic.moment_rows, out.shape[0], src, has_nd, nd, out, window, mode, looks)
    return out
