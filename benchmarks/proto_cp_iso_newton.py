"""Prototype (the library's version, for any layout and with the stage schedule driven by
the gap, is ``tvnumba.solvers._polish.polish_isotropic``): isotropic ROF to a certified gap of 1e-8 by the
Chan-Golub-Mulet primal-dual Newton method on the smoothed problem, with continuation in the
smoothing δ and the dual projected onto |p| <= w, warm-started from Chambolle-Pock.

Fourth session: the 96×80 crop at weight 1 reaches a certified gap of 2.3e-9 in ~2 s (CP
needs 18 450 iterations to 1e-8); at 256² (``--size 256 --deltas 1e-4,1e-6,1e-8``) it did not
converge with δ cut 100× per stage and costs ~0.5 s per Newton step (sparse LU).  What it
needs before it can replace CP's slow tail: a multigrid / preconditioned-CG inner solve and a
gentler continuation.  2-D, one channel, unit spacing only.

    python benchmarks/proto_cp_iso_newton.py [--weight 1] [--size 256]
"""

import sys
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spsolve
from skimage import data, img_as_float, transform

import os
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tvnumba  # noqa: E402


def grad_ops(shape):
    H, W = shape
    def d1(n):
        m = sp.diags([-np.ones(n), np.ones(n - 1)], [0, 1], shape=(n, n)).tolil()
        m[n - 1, n - 1] = 0
        return m.tocsr()
    Dx = sp.kron(sp.identity(H), d1(W)).tocsr()
    Dy = sp.kron(d1(H), sp.identity(W)).tocsr()
    return Dx, Dy

def gap_of(u, px, py, f, w, Dx, Dy):
    gx, gy = Dx @ u, Dy @ u
    P = 0.5 * np.sum((u - f) ** 2) + w * np.sqrt(gx * gx + gy * gy).sum()
    r = f - (Dx.T @ px + Dy.T @ py)
    Dl = 0.5 * f @ f - 0.5 * r @ r
    return P, Dl, (P - Dl) / Dl

def cgm(u, px, py, f, w, Dx, Dy, delta, iters=50, tol=1e-13, verbose=False):
    N = u.size
    I = sp.identity(N, format="csr")
    for k in range(iters):
        gx, gy = Dx @ u, Dy @ u
        m = np.sqrt(gx * gx + gy * gy + delta * delta)
        r1 = u - f + Dx.T @ px + Dy.T @ py
        r2x = m * px - w * gx
        r2y = m * py - w * gy
        res = np.sqrt(r1 @ r1 + r2x @ r2x + r2y @ r2y)
        if res < tol * np.sqrt(f @ f):
            break
        # C = (w I - p g^T / m) / m, symmetrised
        cxx = (w - px * gx / m) / m
        cyy = (w - py * gy / m) / m
        cxy = (-(px * gy + py * gx) / (2 * m)) / m
        Hm = I + (Dx.T @ sp.diags(cxx) @ Dx + Dy.T @ sp.diags(cyy) @ Dy
                  + Dx.T @ sp.diags(cxy) @ Dy + Dy.T @ sp.diags(cxy) @ Dx)
        rhs = -r1 + Dx.T @ (r2x / m) + Dy.T @ (r2y / m)
        du = spsolve(Hm.tocsc(), rhs)
        gdx, gdy = Dx @ du, Dy @ du
        # exact (nonsymmetric) dp from the linearised second equation
        gtd = (gx * gdx + gy * gdy) / m
        dpx = (w * gdx - px * gtd - r2x) / m
        dpy = (w * gdy - py * gtd - r2y) / m
        u = u + du
        px = px + dpx
        py = py + dpy
        pm = np.sqrt(px * px + py * py)
        shrink = np.where(pm > w, w / np.where(pm > 0, pm, 1), 1.0)
        px *= shrink
        py *= shrink
        tp = float(shrink.min())
        if verbose:
            print(k, res, tp)
    return u, px, py, k

def main():
    """The 96×80 camera crop of the hardening sweep (+0.1·N(0,1), seed 6), or camera 256²
    (``--size 256``), at ``--weight``: CP warm start, then δ-continuation."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--warm", type=int, default=500)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--deltas", default="1e-2,1e-3,1e-4,1e-5,1e-6,1e-7,1e-8,5e-9,2.5e-9,1e-9")
    args = ap.parse_args()
    if args.size:
        g0 = img_as_float(transform.resize(data.camera(), (args.size,) * 2, anti_aliasing=True))
        f2 = g0 + 0.1 * np.random.default_rng(0).standard_normal(g0.shape)
    else:
        g0 = img_as_float(data.camera()[100:196, 200:280])
        f2 = g0 + 0.1 * np.random.default_rng(6).standard_normal(g0.shape)
    w = args.weight
    Dx, Dy = grad_ops(f2.shape)
    f = f2.ravel()
    u0, info = tvnumba.denoise_tv_beta(f2, w, eps=1e-12, max_num_iter=args.warm, return_info=True)
    print(f"CP {info.iterations} iterations: gap {info.gap:.2e}")
    u = u0.ravel().copy()
    gx, gy = Dx @ u, Dy @ u
    m = np.sqrt(gx * gx + gy * gy)
    px, py = w * gx / np.maximum(m, 1e-3), w * gy / np.maximum(m, 1e-3)
    t0 = time.perf_counter()
    for delta in (float(d) for d in args.deltas.split(",")):
        u, px, py, k = cgm(u, px, py, f, w, Dx, Dy, delta)
        gap = gap_of(u, px, py, f, w, Dx, Dy)[2]
        print(f"delta {delta:.1e}: {k} Newton steps, certified gap {gap:.2e}, "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        if gap < 1e-8:
            break


if __name__ == "__main__":
    main()
