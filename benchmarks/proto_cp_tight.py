"""Prototype: methods for ROF denoising to a tight duality gap (float64).

min_u ½‖u − f‖² + w TV₁(u); dual max_{|p|≤w} ½‖f‖² − ½‖f − Dᵀp‖².
Every method is certified by the true gap (P(u) − D(p)) / D(p), with u the
primal iterate or f − Dᵀp (the smaller gap), checked every 5 iterations.

Usage: python benchmarks/proto_cp_tight.py METHOD EPS [case ...]
"""

import math
import sys
import time

import numpy as np
from sweep_cp_eps import cases  # the sweep's three cases (same folder)


def grad(u):
    g = np.zeros((u.ndim,) + u.shape)
    for a in range(u.ndim):
        sl0 = [slice(None)] * u.ndim
        sl1 = [slice(None)] * u.ndim
        sl0[a] = slice(0, -1)
        sl1[a] = slice(1, None)
        g[a][tuple(sl0)] = u[tuple(sl1)] - u[tuple(sl0)]
    return g


def adj(p):  # Dᵀp = −div p
    out = np.zeros(p.shape[1:])
    nd = p.shape[0]
    for a in range(nd):
        sl0 = [slice(None)] * nd
        sl1 = [slice(None)] * nd
        sl0[a] = slice(0, -1)
        sl1[a] = slice(1, None)
        q = p[a]
        out[tuple(sl0)] -= q[tuple(sl0)]
        out[tuple(sl1)] += q[tuple(sl0)]
    return out


def proj(p, w, iso):
    if not iso:
        return np.clip(p, -w, w)
    m = np.sqrt((p * p).sum(0))
    return p * (w / np.maximum(m, w))


def tv(u, iso):
    g = grad(u)
    return np.sqrt((g * g).sum(0)).sum() if iso else np.abs(g).sum()


class Gap:
    def __init__(self, f, w, iso):
        self.f, self.w, self.iso = f, w, iso
        self.f2 = float((f * f).sum())

    def __call__(self, u, p):
        f, w = self.f, self.w
        z = f - adj(p)
        dual = 0.5 * self.f2 - 0.5 * float((z * z).sum())
        primal = 0.5 * float(((u - f) ** 2).sum()) + w * tv(u, self.iso)
        primal2 = 0.5 * float(((z - f) ** 2).sum()) + w * tv(z, self.iso)
        return (min(primal, primal2) - dual) / dual if dual > 0 else math.inf


def cp(f, w, iso, eps, maxit, gamma=0.3, ratio=5.0):
    nd = f.ndim
    L = math.sqrt(4 * nd)
    tau, sigma = ratio / L, 1 / (ratio * L)
    u = f.copy(); ub = f.copy(); p = np.zeros((nd,) + f.shape)
    gap = Gap(f, w, iso)
    for it in range(1, maxit + 1):
        th = 1 / math.sqrt(1 + 2 * gamma * tau)
        p = proj(p + sigma * grad(ub), w, iso)
        un = (u - tau * adj(p) + tau * f) / (1 + tau)
        ub = un + th * (un - u)
        u = un
        tau *= th; sigma /= th
        if it % 5 == 0:
            g = gap(u, p)
            if g <= eps:
                return it, g
    return maxit, g


def fista_dual(f, w, iso, eps, maxit, restart=True):
    """FISTA on min ½‖f − Dᵀp‖² over |p| ≤ w, gradient-scheme restart."""
    nd = f.ndim
    Lf = 4.0 * nd
    p = np.zeros((nd,) + f.shape); y = p.copy(); t = 1.0
    gap = Gap(f, w, iso)
    for it in range(1, maxit + 1):
        z = f - adj(y)
        pn = proj(y + grad(z) / Lf, w, iso)
        if restart and ((y - pn) * (pn - p)).sum() > 0:
            t = 1.0
        tn = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = pn + (t - 1) / tn * (pn - p)
        p, t = pn, tn
        if it % 5 == 0:
            u = f - adj(p)
            g = gap(u, p)
            if g <= eps:
                return it, g
    return maxit, g


def pdhg_restart(f, w, iso, eps, maxit, ratio=5.0, accel_until=None, gamma=0.3, beta=0.2,
                 adapt=True):
    """Accelerated CP until the gap ≤ accel_until, then PDHG (θ = 1, fixed τσL² = 1) with
    restarts (to the average or the current iterate, the better gap) when the gap falls
    by a factor beta since the last restart; primal weight updated at restarts (PDLP)."""
    nd = f.ndim
    L = math.sqrt(4 * nd)
    tau, sigma = ratio / L, 1 / (ratio * L)
    u = f.copy(); ub = f.copy(); p = np.zeros((nd,) + f.shape)
    gap = Gap(f, w, iso)
    phase = 0 if accel_until else 1
    ua = pa = None
    for it in range(1, maxit + 1):
        th = 1 / math.sqrt(1 + 2 * gamma * tau) if phase == 0 else 1.0
        p = proj(p + sigma * grad(ub), w, iso)
        un = (u - tau * adj(p) + tau * f) / (1 + tau)
        ub = un + th * (un - u)
        u = un
        if phase == 0:
            tau *= th; sigma /= th
        else:
            ua += u; pa += p; na += 1
        if it % 5 == 0:
            g = gap(u, p)
            if g <= eps:
                return it, g
            if phase == 0 and g <= accel_until:
                phase = 1
                omega = math.sqrt(tau / sigma)  # keep the current balance
                ua, pa, na = np.zeros_like(u), np.zeros_like(p), 0
                u0, p0, g0 = u.copy(), p.copy(), g
                continue
            if phase == 1 and na > 0:
                gav = gap(ua / na, pa / na)
                if min(g, gav) <= beta * g0 or na >= 2000:
                    if gav < g:
                        u, p, g = ua / na, pa / na, gav
                    ub = u.copy()
                    if adapt:
                        dx = math.sqrt(((u - u0) ** 2).sum())
                        dy = math.sqrt(((p - p0) ** 2).sum())
                        if dx > 0 and dy > 0:
                            omega = math.exp(0.5 * math.log(dy / dx) + 0.5 * math.log(omega))
                    tau, sigma = omega / L, 1 / (omega * L)
                    ua[...] = 0; pa[...] = 0; na = 0
                    u0, p0, g0 = u.copy(), p.copy(), g
    return maxit, g




METHODS = {"cp": cp, "fista": fista_dual, "pdhg": pdhg_restart}

if __name__ == "__main__":
    meth = sys.argv[1]
    eps = float(sys.argv[2])
    sel = sys.argv[3].split(",") if len(sys.argv) > 3 else None
    weights = [float(x) for x in sys.argv[4].split(",")] if len(sys.argv) > 4 else [
        0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    isos = [s == "iso" for s in sys.argv[5].split(",")] if len(sys.argv) > 5 else [True, False]
    kw = eval("dict(" + sys.argv[6] + ")") if len(sys.argv) > 6 else {}
    for name, f in cases():
        if sel and name not in sel:
            continue
        for iso in isos:
            row = []
            t0 = time.perf_counter()
            for w in weights:
                it, g = METHODS[meth](f, w, iso, eps, 20000, **kw)
                row.append(f"{it}{'' if g <= eps else '!'}")
            print(f"{meth} {kw} {name} {'iso' if iso else 'an'} eps={eps}: " + " ".join(row),
                  f"({time.perf_counter() - t0:.1f}s)", flush=True)
