"""
On the GPU
==========

With a CUDA GPU and CuPy (``pip install "tvnumba[cuda]"``), pass a CuPy array: the value and
gradient kernels and every denoising solver run on the device and the result stays there.
``device="cuda"`` does the same for a NumPy array and brings the result back.  Without a GPU
this example says so and stops.
"""

import numpy as np
from numba import cuda
from skimage import data, img_as_float

import tvnumba

image = img_as_float(data.camera())[::2, ::2]
noisy = image + 0.1 * np.random.default_rng(0).standard_normal(image.shape)

try:
    import cupy
except ImportError:
    cupy = None

if not cuda.is_available() or cupy is None:
    print("No CUDA GPU (or no CuPy) here: skipping the GPU example.")
else:
    on_gpu = cupy.asarray(noisy, dtype=cupy.float32)
    value, grad = tvnumba.tv_value_and_grad(on_gpu)
    print("tv on the GPU:", value, "gradient type:", type(grad).__name__)
    clean = tvnumba.denoise_tv_beta(on_gpu, weight=0.1)
    cpu = tvnumba.denoise_tv_beta(noisy.astype(np.float32), weight=0.1)
    print("largest difference to the CPU result:", float(abs(clean.get() - cpu).max()))
