"""
β = 1 denoising against scikit-image's ``denoise_tv_chambolle``
===============================================================

Both minimise :math:`\\tfrac12\\|u - f\\|^2 + \\text{weight}\\cdot TV(u)` on the same weight
scale.  We score each answer with that objective (computed with :func:`tvnumba.tv`) and the
PSNR.  scikit-image stops on a small change; tvnumba stops when its duality gap certifies
that the objective is within ``eps`` (relative) of the optimum.
"""

import time

import matplotlib.pyplot as plt
import numpy as np
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_tv_chambolle

from tvnumba import denoise_tv_beta, tv

image = img_as_float(data.camera())[::2, ::2]
noisy = image + 0.1 * np.random.default_rng(0).standard_normal(image.shape)
weight = 0.1


def objective(u):
    return 0.5 * np.sum((u - noisy) ** 2) + weight * tv(u)


denoise_tv_beta(noisy, weight)        # compile / load the kernels before timing
runs = {}
t = time.perf_counter()
runs["skimage default"] = denoise_tv_chambolle(noisy, weight=weight)
runs["skimage default"] = (runs["skimage default"], time.perf_counter() - t, None)
t = time.perf_counter()
u, info = denoise_tv_beta(noisy, weight, return_info=True)
runs["tvnumba eps=1e-3"] = (u, time.perf_counter() - t, info.gap)

for name, (u, seconds, gap) in runs.items():
    psnr = peak_signal_noise_ratio(image, u, data_range=1)
    extra = f", certified gap {gap:.1e}" if gap is not None else ""
    print(f"{name:17s} objective {objective(u):9.3f}  PSNR {psnr:.2f} dB  "
          f"{seconds * 1e3:6.1f} ms{extra}")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.8))
axes[0].imshow(noisy, cmap="gray", vmin=0, vmax=1)
axes[0].set_title("noisy")
for ax, (name, (u, _, _)) in zip(axes[1:], runs.items()):
    ax.imshow(u, cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}\nobjective {objective(u):.2f}", fontsize=9)
for ax in axes:
    ax.axis("off")
fig.tight_layout()
plt.show()

# %%
# Distance to the optimum against time
# ------------------------------------
# The optimum ``F*`` comes from tvnumba at ``eps=1e-7``.  scikit-image is run for a growing
# number of iterations, tvnumba for a shrinking ``eps``; each point is one solve, timed
# warm.  tvnumba's curve is its *certificate*: the relative gap it reports bounds the
# distance it reaches, so a point is known to lie below ``eps`` without knowing ``F*``.

u_star, _ = denoise_tv_beta(noisy, weight, eps=1e-7, return_info=True)
f_star = objective(u_star)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


sk = [timed(lambda n=n: denoise_tv_chambolle(noisy, weight=weight, max_num_iter=n, eps=0))
      for n in (10, 25, 50, 100, 200, 400)]
tn = [timed(lambda e=e: denoise_tv_beta(noisy, weight, eps=e)) for e in
      (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)]

fig, ax = plt.subplots(figsize=(5.5, 3.8))
for name, points, marker in (("skimage chambolle", sk, "o"), ("tvnumba", tn, "s")):
    seconds = [s for _, s in points]
    rel = [max(objective(u) - f_star, 1e-12) / f_star for u, _ in points]
    ax.loglog(seconds, rel, marker=marker, label=name)
ax.set_xlabel("time (s)")
ax.set_ylabel("(F(u) − F*) / F*")
ax.legend()
ax.grid(True, which="both", alpha=0.3)
fig.tight_layout()
plt.show()
