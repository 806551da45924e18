"""Classic speckle filters (boxcar, median, Lee, Frost, Gamma-MAP) as numba kernels.

Every kernel takes the band (float32/float64; ``has_nodata``/``nodata`` mark invalid pixels
besides the non-finite ones) and writes the filtered value of each valid pixel into ``out``
(invalid ones are left untouched). Statistics use the valid pixels of the ``window x window``
neighbourhood only; pixels outside the image count as invalid. Rows go in tasks that load their
rows plus ``window // 2`` of context into a NaN-padded float64 buffer. Sums run in a fixed order
relative to the window (row sums left to right, then top to bottom; never a running sum along
the image), so a pixel's result depends only on its window: tiled filtering with a
``window // 2`` halo equals whole-image filtering bit for bit.

Median: windows up to 7 x 7 go through a comparator network (vectorised over a row; windows
with invalid pixels sort their valid values), larger ones keep a sorted window along the row.

Local statistics over the n valid pixels of the window: ``mean``, sample variance
``var = (sum(p^2) - sum(p)^2 / n) / (n - 1)`` (0 when n == 1, clipped at >= 0), and
``Ci^2 = var / mean^2`` (0 where mean <= 0).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import njit

from .refined_lee_kernel import task_rows

MODE_BOXCAR = 0
MODE_LEE = 1
MODE_GAMMA = 2


@njit(inline="always")
def _row_sums(wl, r):
    """Valid count, sum and sum of squares over wl[i, x - r .. x + r] for every local row i and
    unpadded column x (index x - r). Inner loops index views by the bare loop variable, which
    is what lets LLVM vectorise them."""
    nr, nc = wl.shape
    n = nc - 2 * r
    hn = np.zeros((nr, n))
    hs = np.zeros((nr, n))
    hq = np.zeros((nr, n))
    for i in range(nr):
        cn = hn[i]
        cs = hs[i]
        cq = hq[i]
        for k in range(2 * r + 1):
            src = wl[i, k : k + n]
            for x in range(n):
                p = src[x]
                ok = p == p
                cn[x] += 1.0 if ok else 0.0
                p = p if ok else 0.0
                cs[x] += p
                cq[x] += p * p
    return hn, hs, hq


@njit(inline="always")
def _col_sums(hn, hs, hq, i, r, n, s, q):
    """Window sums for local row i (of the row-sum planes) into n, s, q."""
    nc = hn.shape[1]
    for x in range(nc):
        n[x] = 0.0
        s[x] = 0.0
        q[x] = 0.0
    for dr in range(-r, r + 1):
        a = hn[i + dr]
        b = hs[i + dr]
        c = hq[i + dr]
        for x in range(nc):
            n[x] += a[x]
            s[x] += b[x]
            q[x] += c[x]


@njit(inline="always")
def _task_sums(band, has_nodata, nodata, task, r):
    """The moment kernels' task start: task_rows with ``r`` of context, the row sums of its
    rows, and the n, s, q row buffers _col_sums fills."""
    y0, nr, wl = task_rows(band, has_nodata, nodata, task, r)
    hn, hs, hq = _row_sums(wl, r)
    wd = band.shape[1]
    return y0, nr, wl, hn, hs, hq, np.empty(wd), np.empty(wd), np.empty(wd)


@njit(inline="always")
def _mean_var(n, s, q):
    mean = s / n
    var = 0.0
    if n > 1.0:
        var = (q - s * s / n) / (n - 1.0)
        if var < 0.0:
            var = 0.0
    return mean, var


@njit(inline="always")
def _gamma_map(c, mean, var, looks):
    """Gamma-MAP (Lopes et al. 1990) estimate for centre c."""
    if mean <= 0.0:
        return mean
    ci2 = var / (mean * mean)
    cu2 = 1.0 / looks
    if ci2 <= cu2:
        return mean
    if ci2 >= 2.0 * cu2:  # Ci >= Cmax = sqrt(2) Cu
        return c
    alpha = (1.0 + cu2) / (ci2 - cu2)
    b = alpha - looks - 1.0
    d = mean * mean * b * b + 4.0 * alpha * looks * mean * c
    if d < 0.0:
        d = 0.0
    return (b * mean + math.sqrt(d)) / (2.0 * alpha)


@njit(cache=True, nogil=True, error_model="numpy")
def moment_rows(band, has_nodata, nodata, out, window, mode, looks, task_lo, task_hi):
    """Boxcar, Lee or Gamma-MAP (``mode``) from the local mean and variance."""
    wd = band.shape[1]
    r = window // 2
    sv2 = 1.0 / looks
    for task in range(task_lo, task_hi):
        y0, nr, wl, hn, hs, hq, n, s, q = _task_sums(band, has_nodata, nodata, task, r)
        for i in range(r, nr + r):
            _col_sums(hn, hs, hq, i, r, n, s, q)
            cen = wl[i, r : r + wd]
            y = y0 + i - r
            for x in range(wd):
                c = cen[x]
                if c != c:
                    continue
                mean, var = _mean_var(n[x], s[x], q[x])
                if mode == MODE_BOXCAR:
                    res = mean
                elif mode == MODE_LEE:
                    res = mean
                    if var > 0.0:
                        var_x = (var - mean * mean * sv2) / (1.0 + sv2)
                        if var_x < 0.0:
                            var_x = 0.0
                        res = mean + (var_x / var) * (c - mean)
                else:
                    res = _gamma_map(c, mean, var, looks)
                out[y, x] = res


def frost_tables(window):
    """Window offsets (dy, dx), their distance class, and the distinct Euclidean distances."""
    r = window // 2
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    d2 = (dy * dy + dx * dx).ravel()
    uniq, cls = np.unique(d2, return_inverse=True)
    return (dy.ravel().astype(np.int64), dx.ravel().astype(np.int64),
            cls.astype(np.int64), np.sqrt(uniq.astype(np.float64)))


@njit(cache=True, nogil=True, error_model="numpy")
def frost_rows(band, has_nodata, nodata, out, window, damping, ody, odx, ocls, dist, task_lo, task_hi):
    """Frost: weights exp(-damping * Ci^2 * d) over the valid pixels, d Euclidean distance."""
    wd = band.shape[1]
    r = window // 2
    ncls = dist.shape[0]
    for task in range(task_lo, task_hi):
        y0, nr, wl, hn, hs, hq, n, s, q = _task_sums(band, has_nodata, nodata, task, r)
        e = np.empty((ncls, wd))  # weight of each distance class, per pixel
        num = np.empty(wd)
        den = np.empty(wd)
        for i in range(r, nr + r):
            _col_sums(hn, hs, hq, i, r, n, s, q)
            for x in range(wd):
                if n[x] == 0.0:  # only invalid pixels around (the centre too): no output
                    a = 0.0
                else:
                    mean, var = _mean_var(n[x], s[x], q[x])
                    a = damping * var / (mean * mean) if mean > 0.0 else 0.0
                for k in range(ncls):
                    e[k, x] = math.exp(-a * dist[k])
                num[x] = 0.0
                den[x] = 0.0
            for k in range(ody.shape[0]):
                src = wl[i + ody[k], r + odx[k] : r + odx[k] + wd]
                ek = e[ocls[k]]
                for x in range(wd):
                    p = src[x]
                    ok = p == p
                    wgt = ek[x] if ok else 0.0
                    num[x] += wgt * (p if ok else 0.0)
                    den[x] += wgt
            cen = wl[i, r : r + wd]
            y = y0 + i - r
            for x in range(wd):
                if cen[x] == cen[x]:
                    out[y, x] = num[x] / den[x]


@njit(inline="always")
def _find(buf, n, val):
    """Index of an element equal to val in the sorted buf[:n] (val must be there)."""
    lo = 0
    hi = n - 1
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < val:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(inline="always")
def _insert(buf, n, val):
    """Insert val into the sorted buf[:n]."""
    j = n
    while j > 0 and buf[j - 1] > val:
        buf[j] = buf[j - 1]
        j -= 1
    buf[j] = val


@njit(inline="always")
def _remove(buf, n, val):
    """Remove one occurrence of val from the sorted buf[:n]."""
    for k in range(_find(buf, n, val), n - 1):
        buf[k] = buf[k + 1]


@njit(inline="always")
def _replace(buf, n, old, new):
    """Replace one occurrence of old by new in the sorted buf[:n], keeping it sorted."""
    j = _find(buf, n, old)
    while j + 1 < n and buf[j + 1] < new:
        buf[j] = buf[j + 1]
        j += 1
    while j > 0 and buf[j - 1] > new:
        buf[j] = buf[j - 1]
        j -= 1
    buf[j] = new


@njit(cache=True, nogil=True, error_model="numpy")
def median_rows(band, has_nodata, nodata, out, window, task_lo, task_hi):
    """Median of the valid pixels; for an even count the mean of the two middle values.

    Along a row the window's valid values are kept sorted: each step swaps the column that
    leaves for the one that enters (median by index, no per-pixel sort).
    """
    wd = band.shape[1]
    r = window // 2
    for task in range(task_lo, task_hi):
        y0, nr, wl = task_rows(band, has_nodata, nodata, task, r)
        buf = np.empty(window * window)
        for i in range(r, nr + r):
            n = 0
            for ii in range(i - r, i + r + 1):  # the window of padded column r - 1
                for xx in range(0, 2 * r):
                    p = wl[ii, xx]
                    if p == p:
                        _insert(buf, n, p)
                        n += 1
            y = y0 + i - r
            for x in range(r, wd + r):
                for ii in range(i - r, i + r + 1):
                    old = wl[ii, x - r - 1] if x > r else np.nan
                    new = wl[ii, x + r]
                    if old == old:
                        if new == new:
                            _replace(buf, n, old, new)
                        else:
                            _remove(buf, n, old)
                            n -= 1
                    elif new == new:
                        _insert(buf, n, new)
                        n += 1
                if wl[i, x] == wl[i, x]:
                    k = n // 2
                    out[y, x - r] = buf[k] if n % 2 == 1 else 0.5 * (buf[k - 1] + buf[k])


@lru_cache(maxsize=None)
def median_network(window):
    """Comparators (a, b) leaving the median of window^2 values in channel window^2 // 2.

    Batcher's odd-even merge sort on the next power of two (padding channels hold +inf), cut
    down to the comparators the median channel depends on and to those that can change a value.
    """
    n = window * window
    size = 1 << (n - 1).bit_length()
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    need = {n // 2}
    kept = []
    for a, b in reversed(pairs):  # backwards: only what the median channel depends on
        if a in need or b in need:
            need.update((a, b))
            kept.append((a, b))
    kept.reverse()
    inf = set(range(n, size))
    out = []
    for a, b in kept:  # forwards: a comparator against a +inf channel changes nothing
        if b in inf:
            continue
        if a in inf:  # a real swap: the value moves down, the +inf up
            inf.discard(a)
            inf.add(b)
        out.append((a, b))
    arr = np.array(out, dtype=np.int64).reshape(-1, 2)
    return np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1]), size


@njit(cache=True, nogil=True, error_model="numpy")
def median_net_rows(band, has_nodata, nodata, out, window, net_a, net_b, size, task_lo, task_hi):
    """Median for small windows: complete windows through the comparator network, branch-free
    and vectorised over a whole row; windows with invalid pixels by sorting their valid values."""
    wd = band.shape[1]
    r = window // 2
    n = window * window
    big = np.inf
    for task in range(task_lo, task_hi):
        y0, nr, wl = task_rows(band, has_nodata, nodata, task, r)
        vals = np.empty((size, wd))
        bad = np.zeros(wd, np.uint8)  # 1 where the window holds an invalid pixel
        buf = np.empty(n)
        for i in range(r, nr + r):
            for x in range(wd):
                bad[x] = 0
            c = 0
            for dy in range(-r, r + 1):
                for dx in range(window):
                    src = wl[i + dy, dx : dx + wd]
                    dst = vals[c]
                    for x in range(wd):
                        p = src[x]
                        dst[x] = p
                        bad[x] |= p != p
                    c += 1
            for k in range(n, size):
                vals[k, :] = big
            for t in range(net_a.shape[0]):
                va = vals[net_a[t]]
                vb = vals[net_b[t]]
                for x in range(wd):
                    a = va[x]
                    b = vb[x]
                    va[x] = min(a, b)
                    vb[x] = max(a, b)
            y = y0 + i - r
            med = vals[n // 2]
            for x in range(wd):
                if wl[i, x + r] != wl[i, x + r]:
                    continue
                if bad[x] == 0:
                    out[y, x] = med[x]
                    continue
                m = 0
                for yy in range(i - r, i + r + 1):
                    for xx in range(x, x + window):
                        p = wl[yy, xx]
                        if p == p:
                            _insert(buf, m, p)
                            m += 1
                k = m // 2
                out[y, x] = buf[k] if m % 2 == 1 else 0.5 * (buf[k - 1] + buf[k])
