"""Torch versions of refined Lee, boxcar, Lee, Frost and Gamma-MAP (used on CUDA; runs on CPU).

Same semantics and formulas as the numba kernels (see ``refined_lee_kernel.py`` and ``classic.py``):
invalid pixels become NaN, the image is padded with NaN, and every statistic is accumulated
offset by offset over whole-image shifted views, in the same order as the numba kernels, so
float64 results agree to rounding. Computation is float64 for float64 bands and float32
otherwise (GPU speed), so float32 results may differ where a direction choice is a near tie.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from .checks import check_band, check_damping, check_looks, check_window, nodata_scalar
from .classic import frost_tables
from .refined_lee_kernel import WINDOW_MASKS
from .torch_fused import fused

# bit k of WINDOW_MASKS[kind] -> table[kind, k]: is offset k (row-major in 7 x 7) in the window
_WINDOW_TABLE = torch.from_numpy(((WINDOW_MASKS[:, None] >> np.arange(49)) & 1).astype(bool))
_KIND_A = (0, 4, 2, 6)  # window on the first sub-area's side, per direction
_KIND_B = (1, 5, 3, 7)


def _to_tensor(band, nodata, pad, device):
    """(working tensor, invalid pixels and a ``pad`` border NaN; output numpy dtype)."""
    arr = check_band(band)
    out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
    work = arr.astype(out_dtype, copy=True)
    nd = nodata_scalar(arr, nodata)
    invalid = ~np.isfinite(work)
    if nd is not None:
        invalid |= arr == nd
    work[invalid] = np.nan
    t = torch.from_numpy(np.ascontiguousarray(work)).to(device)
    if pad:
        t = torch.nn.functional.pad(t[None, None], (pad, pad, pad, pad), value=float("nan"))[0, 0]
    return t, out_dtype


def _finish(res, band, out_dtype):
    """Copy the filtered valid pixels over the band (invalid ones pass through unchanged)."""
    out = np.array(np.asarray(band), dtype=out_dtype, copy=True)
    r = res.cpu().numpy()
    ok = ~np.isnan(r)
    out[ok] = r[ok]
    return out


def _noise(v9, snap_exact):
    """sigma_v^2 from the finite V of the nine sub-areas: the mean of the up-to-5 smallest; in snap
    mode SNAP's partial sort (all but the last finite value collected are sorted, then the first
    min(5, n) averaged: see refined_lee_kernel._noise_partial)."""
    finite = ~torch.isnan(v9)
    sorted_part = finite
    if snap_exact:
        idx = torch.arange(9, device=v9.device).view(9, 1, 1)
        last = torch.where(finite, idx, -1).amax(0)
        sorted_part = finite & (idx != last)
    srt, _ = torch.sort(torch.where(sorted_part, v9, torch.inf), dim=0)
    cnt = sorted_part.sum(0).clamp(max=5)
    tot = torch.zeros_like(srt[0])
    for k in range(5):  # explicit adds: a .sum(0) may reorder with the tensor's shape
        tot = tot + torch.where(cnt > k, srt[k], 0.0)
    sig = torch.where(cnt > 0, tot / cnt.clamp(min=1), 0.0)
    if snap_exact:      # n <= 5: every value collected is averaged, the last one included
        n = finite.sum(0)
        every = torch.zeros_like(srt[0])
        for k in range(9):
            every = every + torch.where(finite[k], v9[k], 0.0)
        sig = torch.where(n <= 5, torch.where(n > 0, every / n.clamp(min=1), 0.0), sig)
    return sig


def _mmse(c, n, s1, s2, sig, snap_exact):
    mean_y = c + s1 / n
    var_y = (s2 - s1 * s1 / n) / (n - 1).clamp(min=1)
    var_x = (var_y - mean_y * mean_y * sig) / (1.0 + sig)
    var_x = torch.where(var_x > 0, var_x, 0.0)  # NaN too (an infinite sig)
    res = mean_y + (var_x / torch.where(var_y > 0, var_y, 1.0)) * (c - mean_y)
    flat = torch.zeros_like(mean_y) if snap_exact else mean_y
    res = torch.where(var_y > 0, res, flat)
    return torch.where(n < 2, c, res)


@torch.no_grad()
def refined_lee(band, *, nodata=None, snap_exact=False, device="cpu"):
    xp, out_dtype = _to_tensor(band, nodata, 3, device)
    return _finish(fused(refined_lee_tensor, xp.device)(xp, snap_exact), band, out_dtype)


def refined_lee_tensor(xp, snap_exact: bool = False):
    """Refined Lee of a tensor padded by 3 px of NaN (invalid pixels NaN) on its own device: the
    filtered h x w tensor, NaN where the input is invalid."""
    h, w = xp.shape[0] - 6, xp.shape[1] - 6
    c = xp[3 : 3 + h, 3 : 3 + w]
    # 3 x 3 sub-area planes at padded positions 1 .. h + 4 (index = padded - 1)
    ph, pw = h + 4, w + 4
    cen = xp[1 : 1 + ph, 1 : 1 + pw]
    s0 = torch.zeros_like(cen)
    s1 = torch.zeros_like(cen)
    s2 = torch.zeros_like(cen)
    for dr in range(3):
        for dc in range(3):
            p = xp[dr : dr + ph, dc : dc + pw]
            d = p - cen
            s0 = s0 + p
            s1 = s1 + d
            s2 = s2 + d * d
    mean = s0 / 9.0
    var = ((s2 - s1 * s1 / 9.0) / 8.0).clamp(min=0.0)
    vnorm = torch.where(mean > 0, var / (mean * mean), torch.where(torch.isnan(mean), mean, 0.0))

    def sub(plane, j, i):  # sub-area (j, i) of every output pixel
        return plane[2 * j : 2 * j + h, 2 * i : 2 * i + w]

    m = [[sub(mean, j, i) for i in range(3)] for j in range(3)]
    complete = ~torch.isnan(torch.stack([m[j][i] for j in range(3) for i in range(3)])).any(0)
    pairs = ((m[1][0], m[1][2]), (m[0][2], m[2][0]), (m[0][1], m[2][1]), (m[0][0], m[2][2]))
    best = (pairs[0][0] - pairs[0][1]).abs()
    a, b = pairs[0]
    ka = torch.full_like(c, _KIND_A[0], dtype=torch.long)
    kb = torch.full_like(ka, _KIND_B[0])
    for k in range(1, 4):  # the first direction wins a tie
        g = (pairs[k][0] - pairs[k][1]).abs()
        upd = g > best
        best = torch.where(upd, g, best)
        a = torch.where(upd, pairs[k][0], a)
        b = torch.where(upd, pairs[k][1], b)
        ka = torch.where(upd, _KIND_A[k], ka)
        kb = torch.where(upd, _KIND_B[k], kb)
    kind = torch.where((a - m[1][1]).abs() < (m[1][1] - b).abs(), ka, kb)
    kind = torch.where(complete, kind, 0)
    table = _WINDOW_TABLE.to(xp.device)
    n = torch.zeros_like(c)
    s1 = torch.zeros_like(c)
    s2 = torch.zeros_like(c)
    for k in range(49):
        dr, dc = divmod(k, 7)
        d = xp[dr : dr + h, dc : dc + w] - c
        sel = torch.where(complete, table[:, k][kind], ~torch.isnan(d))
        d = torch.where(sel, d, 0.0)
        n = n + sel
        s1 = s1 + d
        s2 = s2 + d * d
    sig = _noise(torch.stack([sub(vnorm, j, i) for j in range(3) for i in range(3)]), snap_exact)
    res = _mmse(c, n, s1, s2, sig, snap_exact)
    return torch.where(torch.isnan(c), c, res)


def _moments(xp, r, h, w):
    """Valid count, sum and sum of squares over each (2r+1)^2 window: row sums left to right,
    then top to bottom, as the numba kernels add them."""
    nr = h + 2 * r
    hn = torch.zeros((nr, w), dtype=xp.dtype, device=xp.device)
    hs = torch.zeros_like(hn)
    hq = torch.zeros_like(hn)
    for k in range(2 * r + 1):
        p = xp[:, k : k + w]
        ok = ~torch.isnan(p)
        p = torch.where(ok, p, 0.0)
        hn = hn + ok
        hs = hs + p
        hq = hq + p * p
    n = torch.zeros((h, w), dtype=xp.dtype, device=xp.device)
    s = torch.zeros_like(n)
    q = torch.zeros_like(n)
    for dr in range(2 * r + 1):
        n = n + hn[dr : dr + h]
        s = s + hs[dr : dr + h]
        q = q + hq[dr : dr + h]
    mean = s / n
    var = torch.where(n > 1, (q - s * s / n) / (n - 1).clamp(min=1), 0.0).clamp(min=0.0)
    return mean, var


def _window_stats(xp, r):
    """A moment filter's start: the centre pixels and the local mean and variance over each window
    of a tensor padded by ``r``."""
    h, w = xp.shape[0] - 2 * r, xp.shape[1] - 2 * r
    mean, var = _moments(xp, r, h, w)
    return xp[r : r + h, r : r + w], mean, var


@torch.no_grad()
def moment_filter(name, band, *, window=5, looks=1.0, nodata=None, device="cpu"):
    """boxcar, lee or gamma-map (formulas as in classic.py)."""
    window = check_window(window)
    looks = check_looks(looks)
    xp, out_dtype = _to_tensor(band, nodata, window // 2, device)
    return _finish(fused(moment_tensor, xp.device)(xp, name, window // 2, float(looks)), band, out_dtype)


def moment_tensor(xp, name: str, r: int, looks: float):
    """boxcar, lee or gamma-map of a tensor padded by ``r`` px of NaN, on its own device."""
    c, mean, var = _window_stats(xp, r)
    if name == "boxcar":
        res = mean
    elif name == "lee":
        sv2 = 1.0 / looks
        var_x = ((var - mean * mean * sv2) / (1.0 + sv2)).clamp(min=0.0)
        res = torch.where(var > 0, mean + var_x / torch.where(var > 0, var, 1.0) * (c - mean), mean)
    else:
        cu2 = 1.0 / looks
        pos = mean > 0
        ci2 = var / torch.where(pos, mean * mean, 1.0)
        alpha = (1.0 + cu2) / torch.where(ci2 > cu2, ci2 - cu2, 1.0)
        bb = alpha - looks - 1.0
        d = (mean * mean * bb * bb + 4.0 * alpha * looks * mean * c).clamp(min=0.0)
        res = (bb * mean + torch.sqrt(d)) / (2.0 * alpha)
        res = torch.where(ci2 >= 2.0 * cu2, c, res)
        res = torch.where(ci2 <= cu2, mean, res)
        res = torch.where(pos, res, mean)
    return torch.where(torch.isnan(c), c, res)


@torch.no_grad()
def frost(band, *, window=5, damping=2.0, nodata=None, device="cpu"):
    """Frost (formula as in classic.py)."""
    window = check_window(window)
    damping = check_damping(damping)
    xp, out_dtype = _to_tensor(band, nodata, window // 2, device)
    ody, odx, ocls, dist = frost_tables(window)
    offsets = tuple(zip(ody.tolist(), odx.tolist(), ocls.tolist()))
    res = fused(frost_tensor, xp.device)(xp, window // 2, float(damping), offsets, tuple(map(float, dist)))
    return _finish(res, band, out_dtype)


def frost_tensor(xp, r: int, damping: float, offsets: tuple, dist: tuple):
    """Frost of a tensor padded by ``r`` px of NaN, on its own device; ``offsets`` (dy, dx, distance
    class) and ``dist`` (the class distances) are classic.frost_tables' for the window."""
    c, mean, var = _window_stats(xp, r)
    h, w = c.shape
    a = torch.where(mean > 0, damping * var / torch.where(mean > 0, mean * mean, 1.0), 0.0)
    e = [torch.exp(-a * dk) for dk in dist]
    num = torch.zeros_like(c)
    den = torch.zeros_like(c)
    for dy, dx, k in offsets:
        p = xp[r + dy : r + dy + h, r + dx : r + dx + w]
        ok = ~torch.isnan(p)
        wgt = torch.where(ok, e[k], 0.0)
        num = num + wgt * torch.where(ok, p, 0.0)
        den = den + wgt
    return torch.where(torch.isnan(c), c, num / den)


TORCH_FUNCTIONS = {
    "refined-lee": refined_lee,
    "frost": frost,
    "boxcar": functools.partial(moment_filter, "boxcar"),
    "lee": functools.partial(moment_filter, "lee"),
    "gamma-map": functools.partial(moment_filter, "gamma-map"),
}


def apply(name, band, *, nodata=None, device="cpu", **params):
    """Run ``name`` (a filter of the registry with ``torch=True``) with the parameters it takes."""
    return TORCH_FUNCTIONS[name](band, nodata=nodata, device=device, **params)
