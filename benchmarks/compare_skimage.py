"""tvnumba's β = 1 denoising against ``skimage.restoration.denoise_tv_chambolle``, interleaved.

Camera 512² + 0.1·N(0, 1) (seed 0), weight 0.1, both libraries at their defaults (tvnumba to
its certified duality gap 1e-3, scikit-image to its own stopping rule); three rounds of
best-of-9 warm calls, the two alternating so that a change in the machine's load hits both.

    python benchmarks/compare_skimage.py            # float32
    python benchmarks/compare_skimage.py float64
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from skimage import data, img_as_float
from skimage.restoration import denoise_tv_chambolle

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tvnumba  # noqa: E402


def best_and_median(fn, n=9):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3, float(np.median(ts)) * 1e3


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    dtype = np.dtype(argv[0]) if argv else np.dtype(np.float32)
    g = img_as_float(data.camera())
    f = (g + 0.1 * np.random.default_rng(0).standard_normal(g.shape)).astype(dtype)
    tvnumba.denoise_tv_beta(f, 0.1)
    denoise_tv_chambolle(f, weight=0.1)
    print(f"camera 512² {dtype.name}, {tvnumba.get_num_threads()} threads")
    for _ in range(3):
        a = best_and_median(lambda: tvnumba.denoise_tv_beta(f, 0.1))
        b = best_and_median(lambda: denoise_tv_chambolle(f, weight=0.1))
        print(f"tvnumba {a[0]:.1f}/{a[1]:.1f} ms  skimage {b[0]:.1f}/{b[1]:.1f} ms  "
              f"ratio(best) {a[0] / b[0]:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
