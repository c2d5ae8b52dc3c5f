"""Warm solve times of one checkout, for A/B runs between two (run each in turn, twice).

Camera 512² + 0.1·N(0, 1): β = 0.5 (majorize-minimize), 1 (Chambolle-Pock) and 1.5 (L-BFGS),
float32 and float64, best of 5; and a 256³ float32 volume at β = 2 (the DCT solver), best of 3.

    python benchmarks/ab_solvers.py /path/to/checkout_A
    python benchmarks/ab_solvers.py /path/to/checkout_B
"""

from __future__ import annotations

import sys
import time

import numpy as np


def best(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = argv[0]
    sys.path.insert(0, root)
    import tvnumba
    from skimage import data, img_as_float

    assert tvnumba.__file__.startswith(root), tvnumba.__file__
    g = img_as_float(data.camera())
    for dt in (np.float32, np.float64):
        f = (g + 0.1 * np.random.default_rng(0).standard_normal(g.shape)).astype(dt)
        row = []
        for beta, w in ((0.5, 0.04), (1.0, 0.1), (1.5, 0.25)):
            tvnumba.denoise_tv_beta(f, w, beta)
            row.append(f"β={beta}: {best(lambda: tvnumba.denoise_tv_beta(f, w, beta), 5) * 1e3:.1f} ms")
        print(root, np.dtype(dt).name, "  ".join(row), flush=True)
    x = np.random.default_rng(0).random((256, 256, 256), dtype=np.float32)
    tvnumba.denoise_tv_beta(x[:32, :32, :32], 0.1, 2.0)
    print(root, "256³ float32 β=2:", f"{best(lambda: tvnumba.denoise_tv_beta(x, 0.1, 2.0), 3):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
