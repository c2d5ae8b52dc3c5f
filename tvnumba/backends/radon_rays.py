"""The sampling geometry of the Radon projector, written once for both targets.

:func:`make_ray_functions` holds the per-sample arithmetic of the parallel-beam
projector of :mod:`tvnumba.operators.radon` (scikit-image's geometry) as plain
Python, and compiles it with the decorator it is given:
:mod:`tvnumba.backends.cpu.radon_kernels` passes ``numba.njit(inline="always")``,
:mod:`tvnumba.backends.cuda.radon_kernels` passes ``cuda.jit(device=True)``.  The
CPU and CUDA projectors therefore sample the same coordinates with the same
floating-point expressions, and a GPU adjoint is the transpose of the same
bilinear weights as a CPU forward.

Coordinates: sample ``y`` (along the ray) of detector bin ``x`` at angle θ
reads the ``P × P`` square at (row, column)

.. math::

    r = -\\sin θ\\,x + \\cos θ\\,y - c(\\cos θ - \\sin θ - 1), \\quad
    q = \\cos θ\\,x + \\sin θ\\,y - c(\\cos θ + \\sin θ - 1)

with ``c = P // 2`` (the inverse map :func:`skimage.transform.radon` hands to
``warp``), bilinearly, zero outside.  Pixel ``(i, j)`` receives from a sample
the weight ``(1 − dr or dr) · (1 − dq or dq)`` when ``floor(r)`` is ``i`` or
``i − 1`` and ``floor(q)`` is ``j`` or ``j − 1``.

Imports nothing from Numba: the callers own the compilation.
"""

from __future__ import annotations

import math
from collections import namedtuple

#: The compiled functions (see :func:`make_ray_functions`).
RayFunctions = namedtuple("RayFunctions", "coords band interior cell edge_cell ray_sum "
                                          "ray_scatter pixel_gather")

#: Margin, in pixels, of the interior test: far above rounding, far below a pixel.
MARGIN = 1e-6


def make_ray_functions(jit) -> RayFunctions:
    """The projector's per-sample functions compiled by ``jit`` (a decorator).

    The functions call each other through this closure, so every one of them
    is compiled for the target of ``jit``; none allocates.
    """

    @jit
    def coords(x, y, cos_a, sin_a, c):
        """Input (row, column) of rotated-image pixel (row y, column x): the
        inverse map that :func:`skimage.transform.radon` hands to ``warp``."""
        col = cos_a * x + sin_a * y - c * (cos_a + sin_a - 1.0)
        row = -sin_a * x + cos_a * y - c * (cos_a - sin_a - 1.0)
        return row, col

    @jit
    def band(v0, k, lo, hi, lo_y, hi_y):
        """The integer ``y`` in ``[lo_y, hi_y]`` where ``lo <= v0 + k·y <= hi``
        (an empty range is ``ya > yb``)."""
        if abs(k) < 1e-12:
            if v0 < lo or v0 > hi:
                return 1, 0
            return lo_y, hi_y
        a = (lo - v0) / k
        b = (hi - v0) / k
        if a > b:
            a, b = b, a
        ya = max(lo_y, int(math.ceil(a)))
        yb = min(hi_y, int(math.floor(b)))
        return ya, yb

    @jit
    def interior(x, ca, sa, c, top, P):
        """The ray positions ``ya ... yb`` of detector ``x`` whose four bilinear
        neighbours all lie in the image (coordinates in ``[m, top − m]``, ``m``
        = :data:`MARGIN`: there no bounds check is needed)."""
        r0, q0 = coords(x, 0.0, ca, sa, c)
        ya, yb = band(r0, ca, MARGIN, top - MARGIN, 0, P - 1)
        return band(q0, sa, MARGIN, top - MARGIN, ya, yb)

    @jit
    def cell(x, y, ca, sa, c):
        """``(i0, j0, dr, dq)`` of an interior sample (coordinates >= 0:
        truncation is the floor)."""
        r, q = coords(x, y, ca, sa, c)
        i0 = int(r)
        j0 = int(q)
        return i0, j0, r - i0, q - j0

    @jit
    def edge_cell(x, y, ca, sa, c, P):
        """``(inside, i0, j0, dr, dq)`` of any sample: its cell (floor, may be
        -1 or P-1) and the bilinear fractions; ``inside`` is False when no
        neighbour of the sample lies in the image.  Equal to :func:`cell` on
        interior samples."""
        r, q = coords(x, y, ca, sa, c)
        if r <= -1.0 or q <= -1.0 or r >= P or q >= P:
            return False, 0, 0, 0.0, 0.0
        r0 = math.floor(r)
        q0 = math.floor(q)
        return True, int(r0), int(q0), r - r0, q - q0

    @jit
    def edge_sample(x, y, ya, yb, ca, sa, c, P):
        """:func:`edge_cell` of sample ``y`` of a ray whose interior run is
        ``ya ... yb``; ``inside`` is False on the run (done without checks)."""
        if ya <= y <= yb:
            return False, 0, 0, 0.0, 0.0
        return edge_cell(x, float(y), ca, sa, c, P)

    @jit
    def ray_sum(img, x, ca, sa, c, top, P):
        """``Σ_y bilin(img)(coords(x, y))`` over ``y = 0 ... P-1`` (float64):
        the branch-free interior run, then the samples near the edges in
        increasing ``y``."""
        ya, yb = interior(x, ca, sa, c, top, P)
        acc = 0.0
        for y in range(ya, yb + 1):
            i0, j0, dr, dq = cell(x, float(y), ca, sa, c)
            acc += ((1.0 - dr) * ((1.0 - dq) * img[i0, j0] + dq * img[i0, j0 + 1])
                    + dr * ((1.0 - dq) * img[i0 + 1, j0] + dq * img[i0 + 1, j0 + 1]))
        for y in range(P):
            inside, i0, j0, dr, dq = edge_sample(x, y, ya, yb, ca, sa, c, P)
            if not inside:
                continue
            v = 0.0
            if i0 >= 0:
                if j0 >= 0:
                    v += (1.0 - dr) * (1.0 - dq) * img[i0, j0]
                if j0 + 1 < P:
                    v += (1.0 - dr) * dq * img[i0, j0 + 1]
            if i0 + 1 < P:
                if j0 >= 0:
                    v += dr * (1.0 - dq) * img[i0 + 1, j0]
                if j0 + 1 < P:
                    v += dr * dq * img[i0 + 1, j0 + 1]
            acc += v
        return acc

    @jit
    def ray_scatter(img, s, x, ca, sa, c, top, P):
        """``img += s ·`` the bilinear weights of every sample of ray ``x``: the
        transpose of :func:`ray_sum` (not thread-safe: ``img`` is private)."""
        ya, yb = interior(x, ca, sa, c, top, P)
        for y in range(ya, yb + 1):
            i0, j0, dr, dq = cell(x, float(y), ca, sa, c)
            w = (1.0 - dr) * s
            img[i0, j0] += (1.0 - dq) * w
            img[i0, j0 + 1] += dq * w
            w = dr * s
            img[i0 + 1, j0] += (1.0 - dq) * w
            img[i0 + 1, j0 + 1] += dq * w
        for y in range(P):
            inside, i0, j0, dr, dq = edge_sample(x, y, ya, yb, ca, sa, c, P)
            if not inside:
                continue
            if i0 >= 0:
                if j0 >= 0:
                    img[i0, j0] += (1.0 - dr) * (1.0 - dq) * s
                if j0 + 1 < P:
                    img[i0, j0 + 1] += (1.0 - dr) * dq * s
            if i0 + 1 < P:
                if j0 >= 0:
                    img[i0 + 1, j0] += dr * (1.0 - dq) * s
                if j0 + 1 < P:
                    img[i0 + 1, j0 + 1] += dr * dq * s

    @jit
    def window(centre, e, P):
        """The integers in ``[centre − e, centre + e] ∩ [0, P − 1]``."""
        return max(0, int(math.ceil(centre - e))), min(P - 1, int(math.floor(centre + e)))

    @jit
    def share(k0, k, d):
        """The weight, along one axis, that a sample in cell ``k0`` at fraction
        ``d`` gives index ``k``: ``1 − d`` (``k = k0``), ``d`` (``k = k0 + 1``),
        else -1 (not a neighbour)."""
        if k0 == k:
            return 1.0 - d
        if k0 + 1 == k:
            return d
        return -1.0

    @jit
    def pixel_gather(sino, i, j, cos_t, sin_t, c, P):
        """``(Aᵀ sino)[i, j]`` as a gather (float64): for every angle, the
        samples whose cell touches pixel ``(i, j)``, each found by evaluating
        :func:`edge_cell` exactly as :func:`ray_sum` does, so the weights are
        the forward's, bit for bit.

        Those samples have ``r ∈ [i − 1, i + 1)`` and ``q ∈ [j − 1, j + 1)``:
        in the detector frame a square of side 2 rotated by θ, centred on
        ``(x, y) = (c + cos θ (j − c) − sin θ (i − c), c + sin θ (j − c) +
        cos θ (i − c))``, of half-width ``|cos θ| + |sin θ|`` along both
        axes.  The integer points of that box (at most 4 × 4, widened by
        :data:`MARGIN` against rounding) are the candidates; the exact cell
        test keeps the right ones.
        """
        acc = 0.0
        di = i - c
        dj = j - c
        for a in range(cos_t.shape[0]):
            ca = cos_t[a]
            sa = sin_t[a]
            e = abs(ca) + abs(sa) + MARGIN
            xa, xb = window(c + ca * dj - sa * di, e, P)
            ya, yb = window(c + sa * dj + ca * di, e, P)
            for x in range(xa, xb + 1):
                s = sino[x, a]
                for y in range(ya, yb + 1):
                    inside, i0, j0, dr, dq = edge_cell(float(x), float(y), ca, sa, c, P)
                    if inside:
                        wr = share(i0, i, dr)
                        wq = share(j0, j, dq)
                        if wr >= 0.0 and wq >= 0.0:
                            acc += wr * wq * s
        return acc

    return RayFunctions(coords, band, interior, cell, edge_cell, ray_sum, ray_scatter,
                        pixel_gather)
