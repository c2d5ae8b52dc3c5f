"""Plain float64 NumPy reference for tvnumba, written from the definitions in ``tvnumba.tv``'s docstring.

It never imports tvnumba: the tests compare the library against these functions, so
they are kept as direct transcriptions of the formulas (``np.diff``, slicing, sums) with
no attempt at speed.  Every input is converted to float64 first.

Definitions::

    (D_d u)[p] = (u[p + e_d] - u[p]) / h_d    if p_d < n_d - 1, else 0
    isotropic:    TV = sum_p ( sum_c sum_d (D_d u)[p,c]^2 + s^2 )^(beta/2)
    anisotropic:  TV = sum_p sum_c sum_d ( (D_d u)[p,c]^2 + s^2 )^(beta/2)
    grad TV = sum_d D_d^T (w * D_d u),  w = beta (|grad u|^2 + s^2)^(beta/2 - 1), w := 0 where
              the base is 0;  (D_d^T v)[p] = (v[p - e_d] - v[p]) / h_d, v = 0 outside 0..n_d-2.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "roles",
    "ref_tv",
    "ref_tv_grad",
    "ref_grad_scale",
    "ref_torch_tv_loss",
    "ref_torch_tv_loss_grad",
    "ref_tf_total_variation",
    "ref_tf_total_variation_grad",
    "ref_tf_tv_loss",
    "ref_tf_tv_loss_grad",
    "ref_total_variation_distance",
    "ref_kl",
    "ref_kl_grad",
    "ref_blur_valid",
    "numerical_grad",
]


# --------------------------------------------------------------------------- axis roles
def roles(ndim, axes=None, channel_axis=None):
    """Return ``(spatial, channel, batch)``: spatial axes in the order given (non-negative),
    the channel axis (non-negative or None) and the batch axes (ascending)."""
    c = None if channel_axis is None else channel_axis % ndim
    if axes is None:
        spatial = [a for a in range(ndim) if a != c]
    else:
        if np.ndim(axes) == 0:
            axes = (axes,)
        spatial = [int(a) % ndim for a in axes]
    batch = [a for a in range(ndim) if a not in spatial and a != c]
    return spatial, c, batch


def _spacings(spacing, n):
    if np.ndim(spacing) == 0:
        return [float(spacing)] * n
    spacing = [float(h) for h in spacing]
    assert len(spacing) == n, "one spacing per spatial axis"
    return spacing


def _forward_diff(u, axis, h):
    """(D u)[p] = (u[p+1] - u[p]) / h along ``axis``; 0 on the last slice."""
    d = np.zeros_like(u)
    n = u.shape[axis]
    if n > 1:
        idx = [slice(None)] * u.ndim
        idx[axis] = slice(0, n - 1)
        d[tuple(idx)] = np.diff(u, axis=axis) / h
    return d


def _adjoint_diff(v, axis, h):
    """(D^T v)[p] = (v[p-1] - v[p]) / h with v taken as 0 outside 0 .. n-2."""
    n = v.shape[axis]
    v = v.copy()
    last = [slice(None)] * v.ndim
    last[axis] = n - 1
    v[tuple(last)] = 0.0
    out = -v
    if n > 1:
        dst = [slice(None)] * v.ndim
        src = [slice(None)] * v.ndim
        dst[axis] = slice(1, n)
        src[axis] = slice(0, n - 1)
        out[tuple(dst)] += v[tuple(src)]
    return out / h


def _weight(base, beta):
    """w = beta * base^(beta/2 - 1), and 0 where base == 0 (no warnings raised)."""
    pos = base > 0
    safe = np.where(pos, base, 1.0)
    return np.where(pos, beta * safe ** (beta / 2.0 - 1.0), 0.0)


def _parts(u, beta, axes, channel_axis, spacing, isotropic, smoothing):
    u = np.asarray(u).astype(np.float64)  # also handles bool, ints, big-endian
    spatial, c, batch = roles(u.ndim, axes, channel_axis)
    hs = _spacings(spacing, len(spatial))
    diffs = [_forward_diff(u, a, h) for a, h in zip(spatial, hs)]
    s2 = float(smoothing) ** 2
    if isotropic:
        sq = np.zeros_like(u)
        for d in diffs:
            sq = sq + d * d
        if c is not None:
            sq = np.sum(sq, axis=c, keepdims=True)  # channels coupled inside the norm
        base = sq + s2
        terms = base ** (beta / 2.0)
        weights = [_weight(base, beta)] * len(diffs)  # broadcasts over the channel axis
    else:
        terms = np.zeros_like(u)
        weights = []
        for d in diffs:
            base = d * d + s2
            terms = terms + base ** (beta / 2.0)
            weights.append(_weight(base, beta))
    reduce_axes = tuple(spatial) + (() if c is None else (c,))
    per_batch = np.sum(terms, axis=reduce_axes)  # remaining axes = batch, original order
    n_pix = int(np.prod([u.shape[a] for a in spatial]))
    n_batch = int(np.prod([u.shape[a] for a in batch]))
    return u, spatial, hs, diffs, weights, per_batch, n_pix * n_batch


def _check_reduction(reduction):
    assert reduction in ("sum", "mean", "none"), reduction


def ref_tv(u, beta=1.0, axes=None, channel_axis=None, spacing=1.0, isotropic=True,
           smoothing=0.0, reduction="sum"):
    """β-TV of ``u``: Python float for "sum"/"mean", float64 array over the batch axes for
    "none" (shape () when there is no batch axis)."""
    _check_reduction(reduction)
    _, _, _, _, _, per_batch, count = _parts(u, beta, axes, channel_axis, spacing,
                                             isotropic, smoothing)
    if reduction == "none":
        return np.asarray(per_batch, dtype=np.float64)
    total = float(np.sum(per_batch))
    return total / count if reduction == "mean" else total


def ref_tv_grad(u, beta=1.0, axes=None, channel_axis=None, spacing=1.0, isotropic=True,
                smoothing=0.0, reduction="sum"):
    """Gradient of the reduced TV ("none": gradient of the sum), float64, shape of ``u``."""
    _check_reduction(reduction)
    u, spatial, hs, diffs, weights, _, count = _parts(u, beta, axes, channel_axis, spacing,
                                                      isotropic, smoothing)
    g = np.zeros_like(u)
    for a, h, d, w in zip(spatial, hs, diffs, weights):
        g = g + _adjoint_diff(w * d, a, h)
    if reduction == "mean":
        g = g / count
    return g


def ref_grad_scale(u, beta=1.0, axes=None, channel_axis=None, spacing=1.0, isotropic=True,
                   smoothing=0.0, reduction="sum"):
    """Largest |w * D_d u| / h_d over all d (scaled like the gradient).

    Each gradient entry is a sum of at most 2 * n_spatial such terms, so rounding errors of
    the gradient are bounded by (2 * n_spatial * eps * this scale); tests use it for ``atol``
    (cancellation in D^T can make a gradient entry much smaller than its terms)."""
    u, spatial, hs, diffs, weights, _, count = _parts(u, beta, axes, channel_axis, spacing,
                                                      isotropic, smoothing)
    scale = 0.0
    for h, d, w in zip(hs, diffs, weights):
        scale = max(scale, float(np.max(np.abs(w * d))) / h)
    if reduction == "mean":
        scale /= count
    return scale


# --------------------------------------------------------------------------- compat
def ref_torch_tv_loss(x, weight=1.0):
    """The copied PyTorch TVLoss on NCHW:
    2 * weight * (sum (D_h x)^2 / (C (H-1) W) + sum (D_w x)^2 / (C H (W-1))) / N."""
    x = np.asarray(x).astype(np.float64)
    n, c, h, w = x.shape
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    count_h = c * (h - 1) * w
    count_w = c * h * (w - 1)
    return float(2.0 * weight * (np.sum(dh ** 2) / count_h + np.sum(dw ** 2) / count_w) / n)


def ref_torch_tv_loss_grad(x, weight=1.0):
    x = np.asarray(x).astype(np.float64)
    n, c, h, w = x.shape
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    count_h = c * (h - 1) * w
    count_w = c * h * (w - 1)
    g = np.zeros_like(x)
    gh = 2.0 * dh / count_h  # d/d(dh) of sum dh^2 / count_h
    g[:, :, 1:, :] += gh
    g[:, :, :-1, :] -= gh
    gw = 2.0 * dw / count_w
    g[:, :, :, 1:] += gw
    g[:, :, :, :-1] -= gw
    return g * (2.0 * weight / n)


def ref_tf_total_variation(x):
    """tf.image.total_variation: sum |D_h x| + sum |D_w x| per image (HWC → float,
    NHWC → float64 array of length N)."""
    x = np.asarray(x).astype(np.float64)
    if x.ndim == 3:
        return float(np.sum(np.abs(x[1:] - x[:-1])) + np.sum(np.abs(x[:, 1:] - x[:, :-1])))
    assert x.ndim == 4
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = ref_tf_total_variation(x[i])
    return out


def ref_tf_total_variation_grad(x):
    """Gradient of the SUM of tf_total_variation over images (sign(0) = 0)."""
    x = np.asarray(x).astype(np.float64)
    hax, wax = (0, 1) if x.ndim == 3 else (1, 2)
    g = np.zeros_like(x)
    for ax in (hax, wax):
        n = x.shape[ax]
        hi = [slice(None)] * x.ndim
        lo = [slice(None)] * x.ndim
        hi[ax] = slice(1, n)
        lo[ax] = slice(0, n - 1)
        s = np.sign(x[tuple(hi)] - x[tuple(lo)])
        g[tuple(hi)] += s
        g[tuple(lo)] -= s
    return g


def ref_tf_tv_loss(x, weight=1.0):
    return float(weight * np.sum(ref_tf_total_variation(x)))


def ref_tf_tv_loss_grad(x, weight=1.0):
    return weight * ref_tf_total_variation_grad(x)


# --------------------------------------------------------------------------- distance
def ref_total_variation_distance(p, q, axis=None):
    """½ Σ |p − q| over all entries (axis=None → float) or along ``axis`` (→ array)."""
    p = np.asarray(p).astype(np.float64)
    q = np.asarray(q).astype(np.float64)
    if axis is None:
        return float(0.5 * np.sum(np.abs(p - q)))
    return 0.5 * np.sum(np.abs(p - q), axis=axis)


# --------------------------------------------------------------------------- numerics
def numerical_grad(f, u, eps=1e-6):
    """Central differences (f(u + eps e_i) - f(u - eps e_i)) / (2 eps) for every entry i.
    ``f`` must return a scalar; ``u`` is taken as float64."""
    u = np.array(u, dtype=np.float64)  # a private copy
    g = np.zeros_like(u)
    for i in np.ndindex(u.shape):
        old = u[i]
        u[i] = old + eps
        fp = float(f(u))
        u[i] = old - eps
        fm = float(f(u))
        u[i] = old
        g[i] = (fp - fm) / (2.0 * eps)
    return g


# --------------------------------------------------------------------------- Poisson data term
def ref_kl(z, y, b=0.0):
    """KL(z + b; y) = sum (z + b) - y - y log((z + b) / y), with 0 log 0 = 0; inf where
    z + b <= 0 < y or z + b < 0."""
    w = np.asarray(z, np.float64) + b
    y = np.asarray(y, np.float64)
    if np.any(w < 0) or np.any((w <= 0) & (y > 0)):
        return np.inf
    total = float(np.sum(w - y))
    for wi, yi in zip(w.ravel(), y.ravel()):
        if yi > 0:
            total += yi * np.log(yi / wi)
    return total


def ref_kl_grad(z, y, b=0.0):
    """d KL(z + b; y) / dz = 1 - y / (z + b)."""
    return 1.0 - np.asarray(y, np.float64) / (np.asarray(z, np.float64) + b)


def ref_blur_valid(u, psf):
    """The 'valid' part of the convolution of u with psf (the observed window of a blur of
    the extended scene), by direct summation."""
    u = np.asarray(u, np.float64)
    psf = np.asarray(psf, np.float64)
    m0, m1 = psf.shape
    out = np.zeros((u.shape[0] - m0 + 1, u.shape[1] - m1 + 1))
    for i in range(m0):
        for j in range(m1):
            out += psf[m0 - 1 - i, m1 - 1 - j] * u[i:i + out.shape[0], j:j + out.shape[1]]
    return out
