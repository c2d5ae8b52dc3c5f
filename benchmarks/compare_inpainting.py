"""inpaint_tv_beta against skimage.restoration.inpaint_biharmonic on camera 512², the text-like
mask of bench_inverse.py and 50 % random pixels: three calls each, alternating (the first
call of a process includes loading the compiled kernels).

    python benchmarks/compare_inpainting.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_inverse import text_mask
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio as psnr
from skimage.restoration import inpaint_biharmonic
from tvnumba.restoration import inpaint_tv_beta
g = img_as_float(data.camera())
for name, mask in [("text", text_mask(g.shape)), ("random50", np.random.default_rng(0).random(g.shape) < 0.5)]:
    damaged = np.where(mask, 0.0, g)
    for r in range(3):
        t = time.perf_counter(); u, info = inpaint_tv_beta(damaged, mask, return_info=True); t1 = time.perf_counter() - t
        t = time.perf_counter(); ub = inpaint_biharmonic(damaged, mask); t2 = time.perf_counter() - t
        print(name, info.iterations, f"tv {psnr(g, u):.2f} dB {t1*1e3:.0f} ms | biharmonic {psnr(g, ub):.2f} dB {t2*1e3:.0f} ms")
