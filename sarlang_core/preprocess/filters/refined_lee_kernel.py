"""Refined Lee speckle filter (7 x 7, SNAP semantics), numba kernel.

The algorithm is specified in ``shared/notes/REFINED_LEE.md``; this module implements it from
that description. All arithmetic is float64, whatever the output type, so the float32 and float64
paths choose the same edge directions (no float32 near-tie flips).

Per row task the band is loaded as float64 with every invalid pixel (nodata, NaN, Inf) and the
padding outside the image set to NaN. Then:

1. planes of the 3 x 3 sub-area statistics at every pixel: mean ``M`` and normalised variance
   ``V = var / mean^2`` (sample variance; 0 where mean <= 0); both NaN where the 3 x 3 holds an
   invalid or outside pixel. Means come from the plain sum (exact for integer and float32
   data, so equal sub-means tie exactly, as in the reference); variances from sums about the
   centre pixel, so a flat area gives exactly 0.
2. per pixel, the nine sub-areas are read from the planes at offsets -2, 0, +2. The 7 x 7 window
   is complete exactly when all nine are (they tile it), so one NaN test picks the fast path:
   direction and side give one of the 8 28-pixel windows, stored as a 49-bit mask per pixel.
   The window sums are then taken for a whole row at once, offset by offset, with the mask as a
   select: branch-free, SIMD over x, and per pixel still the same fixed summation order.
3. otherwise (border / nodata) the slow path: MMSE over all valid pixels of the 7 x 7 window,
   sigma_v^2 from the complete sub-areas only.

MMSE step (both paths): ``varX = max(0, (varY - meanY^2 s) / (1 + s))``, ``b = varX / varY``,
``out = meanY + b (centre - meanY)`` with ``s`` = mean of the 5 smallest sub-area ``V``.

Choices where REFINED_LEE.md is silent (incomplete windows):
- fewer than 5 complete sub-areas: s is the mean of those there are; none: s = 0 (no noise
  estimate, so the pixel is kept);
- a single valid pixel (n = 1): output the pixel, in both modes;
- ``snap_exact`` follows SNAP's partial sort: of the n complete sub-areas collected in row-major
  order only the first n - 1 are sorted, then the first min(5, n) are averaged -- in a complete
  window the 5 smallest of sub-areas 0..7, near a border or nodata the 5 smallest of the first
  n - 1 complete ones (n >= 6) or all n of them (n <= 5); it also outputs 0 where varY == 0 (n >= 2).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .numba_cache import configure
from .pool import ROWS_PER_TASK

configure()  # before the cache=True decorations below: numba picks the cache folder there

_INF = np.inf


def _window_masks():
    """49-bit masks (bit (dy + 3) * 7 + dx + 3) of the 8 non-edge windows, by kind:
    0 left half (cols 0..3), 1 right half (cols 3..6), 2 top half (rows 0..3), 3 bottom half
    (rows 3..6), 4 upper-right triangle (col >= row), 5 lower-left (col <= row),
    6 upper-left (row + col <= 6), 7 lower-right (row + col >= 6). Each holds 28 pixels."""
    r, c = np.mgrid[0:7, 0:7]
    sel = [c <= 3, c >= 3, r <= 3, r >= 3, c >= r, c <= r, r + c <= 6, r + c >= 6]
    bits = 1 << np.arange(49, dtype=np.int64)
    masks = np.array([int(bits[s.ravel()].sum()) for s in sel], dtype=np.int64)
    assert all(int(s.sum()) == 28 for s in sel)
    return masks


WINDOW_MASKS = _window_masks()


@njit(inline="always")
def load_rows(band, has_nodata, nodata, y_first, nrows, pad):
    """Rows y_first .. y_first + nrows - 1 of ``band`` as float64 with ``pad`` columns each side;
    invalid pixels (non-finite, == nodata), padding and rows outside the image are NaN."""
    h, wd = band.shape
    buf = np.empty((nrows, wd + 2 * pad), np.float64)
    for i in range(nrows):
        yy = y_first + i
        if yy < 0 or yy >= h:
            buf[i, :] = np.nan
            continue
        for x in range(pad):
            buf[i, x] = np.nan
            buf[i, wd + pad + x] = np.nan
        for x in range(wd):
            p = band[yy, x]
            ok = np.isfinite(p) and not (has_nodata and p == nodata)
            buf[i, x + pad] = p if ok else np.nan
    return buf


@njit(inline="always")
def task_rows(band, has_nodata, nodata, task, pad):
    """Row task ``task``: its first image row y0, its row count nr, and its rows loaded with
    ``pad`` rows and columns of context (load_rows): image (y, x) is wl[y - y0 + pad, x + pad]."""
    h = band.shape[0]
    y0 = task * ROWS_PER_TASK
    nr = min(h, y0 + ROWS_PER_TASK) - y0
    return y0, nr, load_rows(band, has_nodata, nodata, y0 - pad, nr + 2 * pad, pad)


@njit(inline="always")
def _planes(wl):
    """3 x 3 sub-area mean and normalised variance V at every position of ``wl`` (NaN where the
    3 x 3 is incomplete, and on the outer ring). Variance from sums about the centre pixel, so a
    flat 3 x 3 gives exactly 0; done offset by offset over a whole row (vectorises over x)."""
    nr, nc = wl.shape
    m = np.empty((nr, nc))
    v = np.empty((nr, nc))
    m[0, :] = np.nan
    v[0, :] = np.nan
    m[nr - 1, :] = np.nan
    v[nr - 1, :] = np.nan
    n = nc - 2
    s0 = np.empty(n)
    for r in range(1, nr - 1):
        # inner loops index views by the bare loop variable: LLVM then vectorises them
        s1 = m[r, 1 : 1 + n]  # the plane rows double as accumulators
        s2 = v[r, 1 : 1 + n]
        cen = wl[r, 1 : 1 + n]
        for x in range(n):
            s0[x] = 0.0
            s1[x] = 0.0
            s2[x] = 0.0
        for dr in range(-1, 2):
            for dx in range(3):
                src = wl[r + dr, dx : dx + n]
                for x in range(n):
                    p = src[x]
                    d = p - cen[x]
                    s0[x] += p
                    s1[x] += d
                    s2[x] += d * d
        for x in range(n):
            a = s1[x]
            # mean from the plain sum (exact for integer or float32 data): sub-means that are
            # equal as numbers are then equal as floats, so exact direction ties stay ties
            mean = s0[x] / 9.0
            var = (s2[x] - a * a / 9.0) / 8.0
            if var < 0.0:
                var = 0.0
            s1[x] = mean  # NaN when some pixel of the 3 x 3 is invalid
            s2[x] = var / (mean * mean) if mean > 0.0 else (0.0 if mean == mean else np.nan)
        m[r, 0] = v[r, 0] = m[r, nc - 1] = v[r, nc - 1] = np.nan
    return m, v


@njit(nogil=True, error_model="numpy")
def _insert5(val, a0, a1, a2, a3, a4):
    """Keep the 5 smallest values seen, sorted ascending."""
    if val >= a4:
        return a0, a1, a2, a3, a4
    if val >= a3:
        return a0, a1, a2, a3, val
    if val >= a2:
        return a0, a1, a2, val, a3
    if val >= a1:
        return a0, a1, val, a2, a3
    if val >= a0:
        return a0, val, a1, a2, a3
    return val, a0, a1, a2, a3


@njit(nogil=True, error_model="numpy")
def _noise_partial(v, y, x, snap_exact):
    """Slow-path sigma_v^2 from the complete sub-areas (NaN V are skipped); 0 when there is none.

    Default: the mean of the (up to) 5 smallest. SNAP (``snap_exact``): of the n values collected
    in row-major order it sorts only the first n - 1, then averages the first min(5, n): the 5
    smallest of the first n - 1 when n >= 6 (the last one collected never counts), all n when
    n <= 5 (REFINED_LEE.md)."""
    a0 = a1 = a2 = a3 = a4 = _INF
    cnt = 0
    total = 0.0
    last = _INF
    for k in range(9):
        val = v[y + 2 * (k // 3) - 2, x + 2 * (k % 3) - 2]
        if val == val:
            cnt += 1
            total += val
            if snap_exact:      # the value before this one joins the sorted part
                if cnt > 1:
                    a0, a1, a2, a3, a4 = _insert5(last, a0, a1, a2, a3, a4)
                last = val
            else:
                a0, a1, a2, a3, a4 = _insert5(val, a0, a1, a2, a3, a4)
    if cnt == 0:
        return 0.0
    if snap_exact and cnt <= 5:
        return total / cnt
    s = a0
    if cnt > 1:
        s += a1
    if cnt > 2:
        s += a2
    if cnt > 3:
        s += a3
    if cnt > 4:
        s += a4
    return s / min(cnt, 5)


@njit(inline="always")
def _nine(plane, y, x):
    """The nine sub-area values around (y, x), row-major: plane at offsets -2, 0, +2."""
    return (plane[y - 2, x - 2], plane[y - 2, x], plane[y - 2, x + 2],
            plane[y, x - 2], plane[y, x], plane[y, x + 2],
            plane[y + 2, x - 2], plane[y + 2, x], plane[y + 2, x + 2])


@njit(inline="always")
def _cx(a, b):
    return min(a, b), max(a, b)


@njit(inline="always")
def _noise9(v, y, x, snap_exact):
    """Fast-path sigma_v^2: mean of the 5 smallest of the 9 sub-area V (first 8 in snap mode).

    An 18-comparator network (a pruned 9-input sorting network) moves the 5 smallest into
    a0..a4, branch-free; checked exhaustively by the 0-1 principle.
    """
    a0, a1, a2, a3, a4, a5, a6, a7, a8 = _nine(v, y, x)
    if snap_exact:
        a8 = _INF
    a0, a1 = _cx(a0, a1)
    a3, a4 = _cx(a3, a4)
    a6, a7 = _cx(a6, a7)
    a1, a2 = _cx(a1, a2)
    a4, a5 = _cx(a4, a5)
    a7, a8 = _cx(a7, a8)
    a0, a1 = _cx(a0, a1)
    a3, a4 = _cx(a3, a4)
    a6, a7 = _cx(a6, a7)
    a0, a3 = _cx(a0, a3)
    a3, a6 = _cx(a3, a6)
    a1, a4 = _cx(a1, a4)
    a4, a7 = _cx(a4, a7)
    a1, a4 = _cx(a1, a4)
    a5, a8 = _cx(a5, a8)
    a2, a5 = _cx(a2, a5)
    a2, a6 = _cx(a2, a6)
    a4, a6 = _cx(a4, a6)
    return (a0 + a1 + a2 + a3 + a4) / 5.0


@njit(inline="always")
def _mmse(c, n, s1, s2, sig, snap_exact):
    """MMSE estimate from shifted sums (s1 = sum(p - c), s2 = sum((p - c)^2)) of n pixels."""
    mean_y = c + s1 / n
    var_y = (s2 - s1 * s1 / n) / (n - 1)
    if var_y <= 0.0:
        return 0.0 if snap_exact else mean_y
    var_x = (var_y - mean_y * mean_y * sig) / (1.0 + sig)
    if not var_x > 0.0:  # also NaN, from an infinite sig (a sub-area mean^2 underflowing to 0)
        var_x = 0.0
    return mean_y + (var_x / var_y) * (c - mean_y)


@njit(nogil=True, error_model="numpy")
def _incomplete(w, v, y, x, snap_exact):
    """Slow path: MMSE over all valid pixels of the 7 x 7 window (NaN = invalid or outside)."""
    c = w[y, x]
    n = 0
    s1 = 0.0
    s2 = 0.0
    for yy in range(y - 3, y + 4):
        for xx in range(x - 3, x + 4):
            p = w[yy, xx]
            if p == p:
                d = p - c
                n += 1
                s1 += d
                s2 += d * d
    if n < 2:
        return c
    return _mmse(c, n, s1, s2, _noise_partial(v, y, x, snap_exact), snap_exact)


@njit(inline="always")
def _choose(m, y, x):
    """Index (0..7) of the 28-pixel window for a complete window, -1 if a sub-area is incomplete."""
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = _nine(m, y, x)
    tot = m00 + m01 + m02 + m10 + m11 + m12 + m20 + m21 + m22
    if tot != tot:  # the nine sub-areas tile the window: one NaN means it is incomplete
        return -1
    # direction = largest gradient, the first on a tie; (a, b) the sub-means across the edge,
    # (ka, kb) the windows on a's and b's side
    g = abs(m10 - m12)
    a, b, ka, kb = m10, m12, 0, 1
    t = abs(m02 - m20)
    if t > g:
        g, a, b, ka, kb = t, m02, m20, 4, 5
    t = abs(m01 - m21)
    if t > g:
        g, a, b, ka, kb = t, m01, m21, 2, 3
    t = abs(m00 - m22)
    if t > g:
        g, a, b, ka, kb = t, m00, m22, 6, 7
    return ka if abs(a - m11) < abs(m11 - b) else kb


@njit(cache=True, nogil=True, error_model="numpy")
def refined_lee_rows(band, has_nodata, nodata, out, snap_exact, task_lo, task_hi):
    """Filter row tasks task_lo .. task_hi - 1 (rows ROWS_PER_TASK * task ...): write the value
    of every valid pixel of ``band`` there into ``out`` (others untouched).

    Each task loads its rows plus 3 of context into a NaN-padded float64 buffer and computes its
    own sub-area planes (a few rows recomputed per task), so nothing image-sized is allocated and
    the working set stays in cache. Tasks are independent: the caller runs them on threads.
    """
    wd = band.shape[1]
    masks = WINDOW_MASKS
    for task in range(task_lo, task_hi):
        y0, nr, wl = task_rows(band, has_nodata, nodata, task, 3)
        m, v = _planes(wl)
        bits = np.zeros(wd, np.int64)  # window mask per pixel, 0 = slow path or invalid
        sig = np.zeros(wd)
        s1 = np.zeros(wd)
        s2 = np.zeros(wd)
        for r in range(3, nr + 3):
            cen = wl[r, 3 : 3 + wd]
            for x in range(wd):
                k = _choose(m, r, x + 3) if cen[x] == cen[x] else -1
                if k < 0:
                    bits[x] = 0
                else:
                    bits[x] = masks[k]
                    sig[x] = _noise9(v, r, x + 3, snap_exact)
                s1[x] = 0.0
                s2[x] = 0.0
            bit = 0
            for dr in range(-3, 4):
                for dx in range(7):
                    src = wl[r + dr, dx : dx + wd]
                    for x in range(wd):
                        d = src[x] - cen[x]
                        d = d if (bits[x] >> bit) & 1 else 0.0  # select, not multiply: NaN
                        s1[x] += d
                        s2[x] += d * d
                    bit += 1
            y = y0 + r - 3
            for x in range(wd):
                c = cen[x]
                if c != c:
                    continue
                if bits[x] != 0:
                    out[y, x] = _mmse(c, 28, s1[x], s2[x], sig[x], snap_exact)
                else:
                    out[y, x] = _incomplete(wl, v, r, x + 3, snap_exact)
