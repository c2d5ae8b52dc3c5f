"""Chambolle–Pock (β = 1) sweep: iterations and wall time to eps, with and
without the anisotropic exact finish (``_polish``), interleaved per case.

    NUMBA_NUM_THREADS=1 PYTHONPATH=. python benchmarks/sweep_cp_eps.py EPS [MAXIT] [iso|an|both] [CASES]

MAXIT ``default`` is ``max_num_iter=None`` (the solver's cap for EPS); CASES a comma list of
cam96x80, cam256, cam512, blobs32 (default: all but cam512).
"""

import math
import sys
import time

import numpy as np
from skimage import data, img_as_float
from skimage.data import binary_blobs

import tvnumba
from tvnumba.solvers import primal_dual as PD


def cases(names):
    if "cam96x80" in names:
        g = img_as_float(data.camera()[100:196, 200:280])
        yield "cam96x80", g + 0.1 * np.random.default_rng(6).standard_normal(g.shape)
    if "cam256" in names:
        g = img_as_float(data.camera()[::2, ::2])
        yield "cam256", g + 0.1 * np.random.default_rng(0).standard_normal(g.shape)
    if "cam512" in names:
        g = img_as_float(data.camera())
        yield "cam512", g + 0.1 * np.random.default_rng(0).standard_normal(g.shape)
    if "blobs32" in names:
        v = binary_blobs(32, n_dim=3, rng=1).astype(float)
        yield "blobs32", v + 0.2 * np.random.default_rng(2).standard_normal(v.shape)


def main():
    eps = float(sys.argv[1])
    maxit = sys.argv[2] if len(sys.argv) > 2 else "20000"
    maxit = None if maxit == "default" else int(maxit)
    which = sys.argv[3] if len(sys.argv) > 3 else "both"
    names = (sys.argv[4] if len(sys.argv) > 4 else "cam96x80,cam256,blobs32").split(",")
    isos = {"iso": (True,), "an": (False,), "both": (True, False)}[which]
    start = PD.POLISH_START
    tvnumba.denoise_tv_beta(np.zeros((8, 8)), 0.1, eps=eps)  # compile
    for name, f in cases(names):
        for iso in isos:
            rows = {}
            for variant, ps in (("before", math.inf), ("after", start)):
                rows[variant] = []
            for w in [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]:
                for variant, ps in (("before", math.inf), ("after", start)):
                    PD.POLISH_START = ps
                    t0 = time.perf_counter()
                    _, info = tvnumba.denoise_tv_beta(f, w, isotropic=iso, eps=eps,
                                                      max_num_iter=maxit, return_info=True)
                    dt = time.perf_counter() - t0
                    rows[variant].append(f"{info.iterations}{'' if info.converged else '!'}"
                                         f"/{dt:.2f}s")
            for variant, row in rows.items():
                print(f"eps={eps} {name} {'iso' if iso else 'an'} {variant}: " + " ".join(row),
                      flush=True)
    PD.POLISH_START = start


if __name__ == "__main__":
    main()
