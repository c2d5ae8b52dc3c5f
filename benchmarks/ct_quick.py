"""One sparse-angle CT solve per angle count at the best weights of bench_ct.py (256², 1 % noise):
time, iterations, PSNR.  NUMBA_NUM_THREADS=2 python benchmarks/ct_quick.py"""
import time, numpy as np, tvnumba
from skimage.data import shepp_logan_phantom
from skimage.transform import resize
from tvnumba.operators import radon
img = resize(shepp_logan_phantom(), (256, 256), anti_aliasing=True)
for n, w in ((30, 0.12), (60, 0.06)):
    theta = np.linspace(0, 180, n, endpoint=False)
    sino = radon(img, theta)
    sino = sino + 0.01 * sino.max() * np.random.default_rng(0).standard_normal(sino.shape)
    tvnumba.reconstruct_tv_beta(sino[:, :3], theta[:3], weight=w)
    t = time.perf_counter()
    u, info = tvnumba.reconstruct_tv_beta(sino, theta, weight=w, return_info=True)
    psnr = 10 * np.log10(1 / np.mean((u - img) ** 2))
    print(n, w, f"{time.perf_counter() - t:.1f}s", info.iterations, info.converged, f"PSNR {psnr:.2f}")
