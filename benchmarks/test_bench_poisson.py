"""Photon counts: Poisson TV deconvolution against Richardson-Lucy and Gaussian TV.

scikit-image's ``cell`` (2-D, small 128², full 256²) and a smoothed ``binary_blobs`` volume
(3-D, small 32³, full 40³) scaled to 10, 100 and 1000 photons at the peak, blurred by a
Gaussian PSF, plus a background of 2 counts, Poisson-sampled (seed 0).  Each image is the
field of view of a larger scene: the scene is blurred on a grid 8 pixels wider on every
side and cropped, so that no method's boundary model matches the data exactly.
``deconvolve_tv_beta`` with ``noise="poisson"`` at its best weight and with
``weight="auto"`` (PURE of the blur-weighted error) against ``richardson_lucy`` on the counts minus the background,
at its best iteration count of 1-500, twice: as scikit-image users call it (baseline; its
convolution has a zero boundary, which darkens the border and keeps that count low) and on
the counts reflect-padded by the PSF's radius and cropped back (``RL, reflect``), and
against Gaussian TV (``deconvolve_tv_beta`` on the same counts at its best weight) and
against Poisson TV with β = 2 (``beta=2.0``, at its best weight).  Each
best parameter is found by PSNR before timing, walked in steps of √2 (weights) or along the
iteration counts until the best has a worse neighbour on both sides.  PSNR against the true
intensity, data range = the photons at the peak; ``ΔPSNR of auto`` is ``weight="auto"``
against the best weight.

Same objective, peer: ``KL(A u + b; y) + w · TV(u)`` with ``u ≥ 0`` on the extended grid
(the ``cell`` case at 100 photons, its best weight), solved by ``deconvolve_tv_beta``
(``noise="poisson"``, default eps: a certified gap ≤ 1e-3) and by SCICO's ADMM when SCICO is
installed (``loss.PoissonLoss`` of ``h ∗ u + b`` with ``linop.Convolve(mode="valid")``,
``L21Norm`` of ``FiniteDifference(append=0)`` and ``NonNegativeIndicator``; ρ = 0.03; the
x-step by its ``GenericSubproblemSolver``, 20 L-BFGS steps: SCICO's Poisson loss has no
proximal operator), timed until its objective, evaluated at ``max(u, 0)``, first reaches
tvnumba's (checked every iteration, limit small 60 s, full 300 s).  SCICO runs in a
process of its own (``scico_poisson.py``: JAX's threads apart from Numba's, and a step that
outlives the limit by a minute is stopped and reported as not reached).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from benchlib import measure, pick, psnr, record
from scipy.signal import fftconvolve
from skimage.restoration import richardson_lucy
from skimage.transform import resize

import tvnumba

pytestmark = pytest.mark.poisson

_CACHE: dict = {}

PHOTONS = (10, 100, 1000)
BACKGROUND = 2.0
#: How far the scene extends beyond the field of view on every side (pixels).
MARGIN = 8


def counts_case(dim, photons):
    """(intensity, counts, psf) of a fluorescence-like scene: scikit-image's ``cell``
    (2-D, small 128², full 256²) or a smoothed ``binary_blobs`` volume (small 32³,
    full 40³), scaled to ``photons`` at its brightest, blurred by a Gaussian PSF (σ = 2;
    1.5 in 3-D) on a grid :data:`MARGIN` wider on every side, cropped to the field of
    view, plus a background of 2 counts, Poisson-sampled."""
    key = ("counts", dim, photons)
    if key not in _CACHE:
        from scipy.ndimage import gaussian_filter
        from skimage.data import binary_blobs, cell

        m = MARGIN
        if dim == 2:
            n = pick(128, 256)
            img = resize(cell().astype(float), (n + 2 * m,) * 2, anti_aliasing=True)
            r, s = 6, 2.0
        else:
            n = pick(32, 40)
            img = gaussian_filter(binary_blobs(n + 2 * m, n_dim=3, volume_fraction=0.2,
                                               rng=1).astype(float), 1.0) + 0.05
            r, s = 3, 1.5
        img = (img - img.min()) / (img.max() - img.min())
        grid = np.mgrid[(slice(-r, r + 1),) * dim]
        psf = np.exp(-sum(g * g for g in grid) / (2 * s * s))
        psf /= psf.sum()
        view = (slice(m, m + n),) * dim  # MARGIN ≥ the PSF's radius: no edge effect inside
        mean = fftconvolve(photons * img, psf, mode="same")[view]
        y = np.random.default_rng(0).poisson(np.maximum(mean, 0) + BACKGROUND)
        _CACHE[key] = photons * img[view], y, psf
    return _CACHE[key]


def _best(run, value, score, max_evals: int = 14):
    """(value, score) of the best of ``value(k)``, k = 0, ±1, ±2, ...: walked from k = 0
    towards the better neighbour until the best has both neighbours scored (or
    ``value`` runs out, ``None``), so that the optimum is not cut off by a fixed grid."""
    scored: dict = {}

    def at(k):
        if k not in scored:
            v = value(k)
            scored[k] = None if v is None else (v, score(run(v)))
        return scored[k]

    for k in (-1, 0, 1):
        at(k)
    while len(scored) < max_evals:
        k = max((k for k in scored if scored[k] is not None), key=lambda k: scored[k][1])
        if k - 1 not in scored:
            at(k - 1)
        elif k + 1 not in scored:
            at(k + 1)
        else:
            break
    return max((vs for vs in scored.values() if vs is not None), key=lambda vs: vs[1])


#: Richardson-Lucy's iteration counts searched (walked from 10).
RL_COUNTS = (1, 2, 3, 4, 5, 7, 10, 15, 20, 30, 50, 70, 100, 150, 200, 300, 500)


def counts_parameters(dim, photons):
    """The best parameter of each method and its PSNR (searched once, before timing):
    Poisson TV's weight and Gaussian TV's weight (on the counts minus the background),
    each walked in steps of √2 until the best is interior, and Richardson-Lucy's
    iteration count (walked over :data:`RL_COUNTS`)."""
    key = ("counts-best", dim, photons)
    if key not in _CACHE:
        from tvnumba.restoration.poisson_weight import starting_weight

        x, y, psf = counts_case(dim, photons)
        score = lambda u: psnr(x, u, data_range=photons)  # noqa: E731
        kw = dict(noise="poisson", background=BACKGROUND)
        w0 = starting_weight(float(y.mean()) - BACKGROUND)
        wp, sp = _best(lambda w: tvnumba.deconvolve_tv_beta(y, psf, w, **kw),
                       lambda k: w0 * 2.0 ** (k / 2), score)
        f = (y - BACKGROUND).astype(np.float64)
        wg, sg = _best(lambda w: tvnumba.deconvolve_tv_beta(f, psf, w),
                       lambda k: wp * float(f.mean()) * 2.0 ** (k / 2), score)
        f0 = np.maximum(f, 0)
        i0 = RL_COUNTS.index(10)
        count = lambda k: RL_COUNTS[i0 + k] if 0 <= i0 + k < len(RL_COUNTS) else None  # noqa: E731
        rl = _best(lambda n: rl_run(f0, psf, n), count, score)
        rl_reflect = _best(lambda n: rl_run(f0, psf, n, reflect=True), count, score)
        w2 = starting_weight(float(y.mean()) - BACKGROUND, 2.0)
        b2 = _best(lambda w: tvnumba.deconvolve_tv_beta(y, psf, w, beta=2.0, **kw),
                   lambda k: w2 * 2.0 ** (k / 2), score)
        _CACHE[key] = dict(poisson=(wp, sp), gaussian=(wg, sg), rl=rl, rl_reflect=rl_reflect,
                           beta2=b2)
    return _CACHE[key]


def rl_run(f0, psf, n, reflect=False):
    """scikit-image's ``richardson_lucy``, ``n`` iterations, on ``f0`` as given or
    reflect-padded by the PSF's radius and cropped back."""
    if not reflect:
        return richardson_lucy(f0, psf, num_iter=n, clip=False)
    r = [m // 2 for m in psf.shape]
    padded = np.pad(f0, [(k, k) for k in r], mode="reflect")
    u = richardson_lucy(padded, psf, num_iter=n, clip=False)
    return u[tuple(slice(k, k + m) for k, m in zip(r, f0.shape))]


@pytest.mark.parametrize("method", ["poisson", "poisson-auto", "poisson-beta2", "gaussian",
                                    "richardson_lucy", "richardson_lucy-reflect"])
@pytest.mark.parametrize("photons", PHOTONS, ids=lambda p: f"{p}photons")
@pytest.mark.parametrize("dim", [2, 3], ids=["2d", "3d"])
def test_poisson_deconvolution(benchmark, dim, photons, method):
    x, y, psf = counts_case(dim, photons)
    best = counts_parameters(dim, photons)
    shape = "×".join(map(str, x.shape))
    benchmark.group = (f"photon counts: deconvolution, {'cell' if dim == 2 else 'blobs'} "
                       f"{shape}, {photons} photons at the peak, background {BACKGROUND:g}")
    table = (f"Poisson deconvolution: {'cell' if dim == 2 else 'blobs'} {shape}, "
             f"background {BACKGROUND:g}")
    row = f"{photons} photons"
    kw = dict(noise="poisson", background=BACKGROUND, return_info=True)
    if method == "poisson":
        w, sp = best["poisson"]
        u, info = measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(y, psf, w, **kw),
                          rounds=1)
        record(benchmark, "Poisson TV", table=table, row=row,
               PSNR=psnr(x, u, data_range=photons),
               **{"ΔPSNR vs RL": sp - best["rl"][1],
                  "ΔPSNR vs RL, reflect": sp - best["rl_reflect"][1],
                  "ΔPSNR vs Gaussian TV": sp - best["gaussian"][1]},
               weight=w, gap=info.gap, iterations=info.iterations,
               **{"best RL iterations": best["rl"][0],
                  "best RL, reflect, iterations": best["rl_reflect"][0]})
    elif method == "poisson-auto":
        u, info = measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(y, psf, "auto", **kw),
                          rounds=1)
        record(benchmark, "Poisson TV auto", role="other", table=table, row=row,
               **{"ΔPSNR of auto vs best weight":
                  psnr(x, u, data_range=photons) - best["poisson"][1],
                  "auto weight": info.weight})
    elif method == "poisson-beta2":
        w, s2 = best["beta2"]
        u, info = measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(y, psf, w, beta=2.0,
                                                                        **kw), rounds=1)
        record(benchmark, "Poisson TV β=2", role="other", table=table, row=row,
               **{"β=2: ΔPSNR vs RL": s2 - best["rl"][1],
                  "β=2: ΔPSNR vs RL, reflect": s2 - best["rl_reflect"][1],
                  "β=2: ΔPSNR vs β=1": s2 - best["poisson"][1],
                  "β=2: weight": w, "β=2: iterations": info.iterations})
    elif method == "gaussian":
        f = (y - BACKGROUND).astype(np.float64)
        w = best["gaussian"][0]
        measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(f, psf, w), rounds=1)
        record(benchmark, "Gaussian TV", role="other", table=table, row=row)
    else:
        f = np.maximum(y - BACKGROUND, 0).astype(np.float64)
        reflect = method == "richardson_lucy-reflect"
        n = best["rl_reflect" if reflect else "rl"][0]
        measure(benchmark, lambda: rl_run(f, psf, n, reflect=reflect), rounds=1)
        record(benchmark, "richardson_lucy, reflect" if reflect else "richardson_lucy",
               role="other" if reflect else "baseline", table=table, row=row)


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "scico"])
def test_poisson_same_objective(benchmark, method):
    if method == "scico":
        pytest.importorskip("scico")
    photons = 100
    x, y, psf = counts_case(2, photons)
    w = counts_parameters(2, photons)["poisson"][0]
    benchmark.group = (f"photon counts, one objective (Poisson TV, extended grid): cell "
                       f"{'×'.join(map(str, y.shape))}, {photons} photons, weight {w:.3g}")
    kw = dict(noise="poisson", background=BACKGROUND, return_info=True)
    if ("peer", w) not in _CACHE:  # tvnumba's objective, the peer's target
        _CACHE[("peer", w)] = tvnumba.deconvolve_tv_beta(y, psf, w, **kw)[1].objective
    target = _CACHE[("peer", w)]
    if method == "tvnumba":
        u, info = measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(y, psf, w, **kw))
        record(benchmark, "tvnumba deconvolve_tv_beta (eps=1e-3)", objective=info.objective,
               PSNR=psnr(x, u, data_range=photons), iterations=info.iterations, reached=True)
        return
    limit = pick(60.0, 300.0)
    pads = [(m // 2, (m - 1) // 2) for m in psf.shape]
    peer = _Child(y=y, psf=psf, weight=w, background=BACKGROUND, target=target)
    try:
        result = measure(benchmark, lambda: peer.run(limit), warm=peer.start, rounds=1)
    finally:
        peer.close()
    psnr_ = None
    if result["x"] is not None:
        u = np.maximum(result["x"], 0)[tuple(slice(a, a + n)
                                             for (a, _), n in zip(pads, y.shape))]
        psnr_ = psnr(x, u, data_range=photons)
    record(benchmark, f"SCICO ADMM {peer.version}", role="other",
           objective=result["objective"], PSNR=psnr_, iterations=result["n"],
           reached=result["reached"], lower_bound=not result["reached"])


class _Child:
    """``scico_poisson.py`` in a process of its own: :meth:`start` compiles and waits,
    :meth:`run` times one solve; a step that does not return by ``limit`` + a minute is
    stopped with the process and reported as not reached."""

    def __init__(self, **case):
        import tempfile

        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "case.npz")
        np.savez(self.path, **case)
        self.proc = None
        self.lines: queue.Queue = queue.Queue()
        from importlib.metadata import version

        self.version = version("scico")

    def start(self):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scico_poisson.py")
        self.proc = subprocess.Popen([sys.executable, script, self.path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.reader = threading.Thread(
            target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True)
        self.reader.start()
        if self._line(600.0) != "ready":
            raise RuntimeError("SCICO's process did not get ready")

    def run(self, limit: float) -> dict:
        self.proc.stdin.write(f"{limit}\n")
        self.proc.stdin.flush()
        deadline = time.perf_counter() + limit + 60.0
        last = {"n": 0, "reached": False, "objective": None, "x": None}
        while True:
            line = self._line(max(deadline - time.perf_counter(), 0.0))
            if line is None:  # one step outlived the limit: stopped with its process
                self.proc.kill()
                return last
            if line.startswith("step "):
                _, n, value = line.split()
                last.update(n=int(n), objective=float(value))
                continue
            result = json.loads(line)
            result["x"] = np.load(self.path + ".out.npy")
            return result

    def _line(self, timeout: float):
        try:
            return self.lines.get(timeout=timeout).strip()
        except queue.Empty:
            return None

    def close(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.reader.join(10.0)  # the pipe's end after the process's
            self.proc.stdin.close()
            self.proc.stdout.close()
        self.dir.cleanup()
