"""Kernels that prepare a masked (inpainting) problem on canonical ``(B, C, Z, Y, X)``
arrays: the first iterate (a pull-push fill of the holes) and the holes' labels and
bounds of :mod:`tvnumba.solvers._box`.  :class:`tvnumba.backends.array.ArrayOps` holds
the same two operations as whole-array code (SciPy's or CuPy's ``ndimage.label``)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..._config import JIT, helper, parallel_kernel


# --------------------------------------------------------------------------- pull-push
def pull_push_fill(f, known):
    """The holes (``known`` False) of every ``f[b, c]`` filled by pull-push, as
    :meth:`tvnumba.backends.array.ArrayOps.pull_push_fill`: one Numba pass per level and
    direction, the finest level read from ``f`` and ``known`` without copies."""
    f = np.ascontiguousarray(f)
    known = np.ascontiguousarray(known)
    dt = f.dtype
    zero, one = dt.type(0), dt.type(1)
    if bool(known.all()):
        return f.copy()
    axes = [a for a in (2, 3, 4) if f.shape[a] > 1]
    levels = []
    v, w = f, known
    empty = True
    while axes and empty:
        levels.append((v, w))
        shape = tuple((n + 1) // 2 if a in axes else n for a, n in enumerate(v.shape))
        vo, wo = np.empty(shape, dt), np.empty(shape, dt)
        empty = _pull(v, w, 2 in axes, 3 in axes, 4 in axes, zero, vo, wo) > 0
        v, w = vo, wo
        axes = [a for a in axes if v.shape[a] > 1]
    if w is known:  # single-pixel planes: nothing to pull
        v, w = np.where(known, f, zero), known.astype(dt)
    # a plane without any known pixel gets the mean of all known pixels
    mean = v.sum() / max(w.sum(), one)
    est = np.where(w > 0, v / np.where(w > 0, w, one), mean).astype(dt, copy=False)
    for v, w in reversed(levels):
        out = np.empty(v.shape, dt)
        _push(est, v, w, zero, one, out)
        est = out
    return est


@parallel_kernel
def _pull(v, w, hz, hy, hx, zero, vo, wo):
    """``vo``, ``wo``: the sums of ``v`` (where ``w > 0``) and of ``w`` over 2-blocks
    along the halved axes (``hz``, ``hy``, ``hx``; an odd length's last block has one
    slice), summed along z, then y, then x as the whole-array code does.  Returns the
    number of empty blocks."""
    B, C, Z, Y, X = vo.shape
    Zf, Yf, Xf = v.shape[2], v.shape[3], v.shape[4]
    nz, ny, nx = (2 if hz else 1), (2 if hy else 1), (2 if hx else 1)
    empty = 0
    for r in prange(B * C * Z * Y):
        y = r % Y
        z = (r // Y) % Z
        bc = r // (Y * Z)
        b, c = bc // C, bc % C
        for x in range(X):
            s = zero
            t = zero
            for ox in range(nx):
                xx = nx * x + ox
                if xx < Xf:
                    sy = zero
                    ty = zero
                    for oy in range(ny):
                        yy = ny * y + oy
                        if yy < Yf:
                            sz = zero
                            tz = zero
                            for oz in range(nz):
                                zz = nz * z + oz
                                if zz < Zf:
                                    wv = w[b, c, zz, yy, xx]
                                    sz += v[b, c, zz, yy, xx] if wv > 0 else zero
                                    tz += wv
                            sy += sz
                            ty += tz
                    s += sy
                    t += ty
            vo[b, c, z, y, x] = s
            wo[b, c, z, y, x] = t
            empty += 1 if t == zero else 0
    return empty


@helper
def _neighbours(i, n, halved):
    """The coarse cell of fine index ``i`` and the one its linear interpolation leans
    to (block centres at ±¼ of a coarse cell, the edge cells repeated)."""
    if not halved:
        return i, i
    k = i // 2
    return k, (max(k - 1, 0) if i % 2 == 0 else min(k + 1, n - 1))


@parallel_kernel
def _push(est, v, w, zero, one, out):
    """``out = v / w`` where ``w > 0``, else the linear interpolation of the coarse
    ``est`` (along z, then y, then x, each axis that ``est`` halves).  Selects, not
    branches, on ``w``: a random mask would mispredict every other pixel."""
    B, C, Z, Y, X = out.shape
    Zc, Yc, Xc = est.shape[2], est.shape[3], est.shape[4]
    hz, hy, hx = Zc != Z, Yc != Y, Xc != X
    three = type(one)(0.75)
    quarter = type(one)(0.25)
    for r in prange(B * C * Z * Y):
        y = r % Y
        z = (r // Y) % Z
        bc = r // (Y * Z)
        b, c = bc // C, bc % C
        z0, z1 = _neighbours(z, Zc, hz)
        y0, y1 = _neighbours(y, Yc, hy)
        for x in range(X):
            x0, x1 = _neighbours(x, Xc, hx)
            a00 = _lerp(est[b, c, z0, y0, x0], est[b, c, z1, y0, x0], hz, three, quarter)
            a10 = _lerp(est[b, c, z0, y1, x0], est[b, c, z1, y1, x0], hz, three, quarter)
            a01 = _lerp(est[b, c, z0, y0, x1], est[b, c, z1, y0, x1], hz, three, quarter)
            a11 = _lerp(est[b, c, z0, y1, x1], est[b, c, z1, y1, x1], hz, three, quarter)
            a0 = _lerp(a00, a10, hy, three, quarter)
            a1 = _lerp(a01, a11, hy, three, quarter)
            up = _lerp(a0, a1, hx, three, quarter)
            wv = w[b, c, z, y, x]
            den = zero + wv if wv > 0 else one
            out[b, c, z, y, x] = v[b, c, z, y, x] / den if wv > 0 else up


@helper
def _lerp(a, b, on, three, quarter):
    """``¾a + ¼b`` along an axis the coarse level halves (``on``), else ``a`` unchanged."""
    return three * a + quarter * b if on else a


# --------------------------------------------------------------------------- hole bounds
def hole_bounds(m, f, axes, kappa: float):
    """``(labels, hole_lo, hole_hi, lo, hi)`` of the masked term ``½‖m ⊙ u − f‖²`` on
    canonical arrays, as :meth:`tvnumba.backends.array.ArrayOps.hole_bounds`: ``labels``
    int32, 0 on known pixels (``m > 0``), the same number on the pixels of one hole (a
    component of ``m = 0`` connected along ``axes``), numbers not consecutive;
    ``hole_lo[l]``, ``hole_hi[l]`` the min / max of ``f/m ∓ κ/m²`` over the known
    neighbours of hole ``l`` (±inf without one); ``lo``, ``hi`` the range of ``f/m``
    over the known pixels (``(inf, −inf)`` without one).  Two serial passes of a
    union-find (a hole's pixels may join from anywhere)."""
    return _hole_bounds(np.ascontiguousarray(m), np.ascontiguousarray(f), 2 in axes,
                        3 in axes, 4 in axes, float(kappa))


@njit(**JIT)
def _hole_bounds(m, f, hz, hy, hx, kappa):
    """:func:`hole_bounds` with the differenced axes as flags (z, y, x)."""
    B, C, Z, Y, X = m.shape
    labels = np.zeros(m.shape, np.int32)
    parent = np.empty(m.size + 1, np.int32)
    n = 0
    # pass 1: provisional labels, joined where a hole meets an earlier one
    for b in range(B):
        for c in range(C):
            for z in range(Z):
                for y in range(Y):
                    left = 0
                    for x in range(X):
                        if m[b, c, z, y, x] > 0:
                            left = 0
                            continue
                        lab = left if hx else 0
                        if hy and y > 0:
                            lab = _join(parent, lab, labels[b, c, z, y - 1, x])
                        if hz and z > 0:
                            lab = _join(parent, lab, labels[b, c, z - 1, y, x])
                        if lab == 0:
                            n += 1
                            parent[n] = n
                            lab = n
                        labels[b, c, z, y, x] = lab
                        left = lab
    # every label's root: parent[l] ≤ l, so one pass in increasing order resolves them
    parent[0] = 0
    for lab in range(1, n + 1):
        parent[lab] = parent[parent[lab]]
    hole_lo = np.full(n + 1, np.inf)
    hole_hi = np.full(n + 1, -np.inf)
    lo = np.inf
    hi = -np.inf
    # pass 2: each known pixel widens its hole neighbours' roots by its bounds, each hole
    # pixel takes its root; selects, not branches, on m > 0 (entry 0 takes the known
    # neighbours' updates)
    for b in range(B):
        for c in range(C):
            for z in range(Z):
                for y in range(Y):
                    for x in range(X):
                        labels[b, c, z, y, x] = parent[labels[b, c, z, y, x]]
                        mv = np.float64(m[b, c, z, y, x])
                        known = mv > 0
                        inv = 1.0 / (mv if known else 1.0)
                        ratio = np.float64(f[b, c, z, y, x]) * inv
                        k = kappa * inv * inv
                        low = ratio - k if known else np.inf
                        high = ratio + k if known else -np.inf
                        lo = min(lo, ratio if known else np.inf)
                        hi = max(hi, ratio if known else -np.inf)
                        if hx:
                            if x > 0:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z, y, x - 1],
                                       low, high)
                            if x < X - 1:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z, y, x + 1],
                                       low, high)
                        if hy:
                            if y > 0:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z, y - 1, x],
                                       low, high)
                            if y < Y - 1:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z, y + 1, x],
                                       low, high)
                        if hz:
                            if z > 0:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z - 1, y, x],
                                       low, high)
                            if z < Z - 1:
                                _widen(parent, hole_lo, hole_hi, labels[b, c, z + 1, y, x],
                                       low, high)
    hole_lo[0] = np.inf
    hole_hi[0] = -np.inf
    return labels, hole_lo, hole_hi, lo, hi


@helper
def _find(parent, a):
    """The root of ``a``, halving the path on the way."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@helper
def _join(parent, a, b):
    """The root of the union of ``a`` and ``b`` (0: none), the smaller root kept."""
    if b == 0:
        return a
    if a == 0:
        return b
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
        return ra
    parent[ra] = rb
    return rb


@helper
def _widen(parent, hole_lo, hole_hi, lab, low, high):
    """The range of the hole of label ``lab`` (its root's entry) widened to ``[low, high]``."""
    root = parent[lab]
    hole_lo[root] = min(hole_lo[root], low)
    hole_hi[root] = max(hole_hi[root], high)
