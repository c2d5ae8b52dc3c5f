"""
Total variation distance between two histograms
================================================

:func:`tvnumba.total_variation_distance` is ½ Σ|p − q| for two probability distributions —
here the grey-level histograms of two scikit-image pictures.  Histograms are counts: divide by
their sum first (the function checks, it does not normalise).
"""

import matplotlib.pyplot as plt
import numpy as np
from skimage import data

from tvnumba import total_variation_distance

bins = np.arange(0, 257, 8)
hists = {}
for name in ("camera", "moon", "coins"):
    counts, _ = np.histogram(getattr(data, name)(), bins=bins)
    hists[name] = counts / counts.sum()

for a, b in [("camera", "moon"), ("camera", "coins"), ("moon", "coins")]:
    print(f"d_TV({a}, {b}) = {total_variation_distance(hists[a], hists[b]):.3f}")

fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name, p in hists.items():
    ax.step(bins[:-1], p, where="post", label=name)
ax.set_xlabel("grey level")
ax.set_ylabel("probability")
ax.legend()
fig.tight_layout()
plt.show()
