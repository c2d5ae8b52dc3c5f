"""
Choosing the weight automatically
=================================

``weight="auto"`` estimates the noise level σ and picks the weight that minimises Stein's
unbiased risk estimate (SURE) of the mean squared error.  We compare its choice with a sweep
of weights scored against the clean image (which a real user does not have).
"""

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio

from tvnumba import denoise_tv_beta

image = img_as_float(data.camera())[::4, ::4]                # 128 x 128
noisy = image + 0.1 * np.random.default_rng(0).standard_normal(image.shape)

auto, info = denoise_tv_beta(noisy, weight="auto", return_info=True)
auto_psnr = peak_signal_noise_ratio(image, auto, data_range=1)
print(f"estimated sigma {info.sigma:.4f} (true 0.1), chosen weight {info.weight:.4f}, "
      f"PSNR {auto_psnr:.2f} dB")

weights = np.geomspace(0.02, 0.4, 12)
psnrs = [peak_signal_noise_ratio(image, denoise_tv_beta(noisy, w), data_range=1)
         for w in weights]

fig, ax = plt.subplots(figsize=(6, 3.6))
ax.semilogx(weights, psnrs, "o-", label="sweep (needs the clean image)")
ax.plot([info.weight], [auto_psnr], "r*", markersize=14, label='weight="auto"')
ax.xaxis.set_minor_formatter(NullFormatter())
ticks = [0.02, 0.05, 0.1, 0.2, 0.4]
ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
ax.set_xlabel("weight")
ax.set_ylabel("PSNR (dB)")
ax.legend()
fig.tight_layout()
plt.show()
