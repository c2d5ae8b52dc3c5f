"""
Deconvolution and the border
============================

A camera records a window of a larger scene, so the blur near the frame mixes in light from
outside it.  We make such an observation (blur the scene, then cut the window, add noise) and
deconvolve it with ``boundary="extend"`` (the default: the unknown scene is larger than the
window) and with ``boundary="periodic"`` (the circular model of ``skimage.restoration.wiener``),
which rings at the border.
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.signal import convolve2d
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio

from tvnumba import deconvolve_tv_beta

scene = img_as_float(data.camera())[::2, ::2]                # 256 x 256
psf = np.full((1, 9), 1 / 9)                                 # horizontal motion blur
blurred = convolve2d(np.pad(scene, 4, mode="reflect"), psf, mode="valid")[4:-4]
rng = np.random.default_rng(0)
observed = blurred + 0.01 * rng.standard_normal(blurred.shape)

results = {b: deconvolve_tv_beta(observed, psf, boundary=b) for b in ("extend", "periodic")}

fig, axes = plt.subplots(2, 3, figsize=(10, 6.5))
crop = (slice(96, 224), slice(0, 64))                        # at the left border
for col, (title, u) in enumerate([("observed", observed)] + list(results.items())):
    psnr = peak_signal_noise_ratio(scene, np.clip(u, 0, 1), data_range=1)
    label = title if col == 0 else f'boundary="{title}"'
    axes[0, col].imshow(u, cmap="gray", vmin=0, vmax=1)
    axes[0, col].set_title(f"{label}\nPSNR {psnr:.2f} dB", fontsize=9)
    axes[1, col].imshow(u[crop], cmap="gray", vmin=0, vmax=1)
    axes[1, col].set_title("left border", fontsize=8)
for ax in axes.ravel():
    ax.axis("off")
fig.tight_layout()
plt.show()
