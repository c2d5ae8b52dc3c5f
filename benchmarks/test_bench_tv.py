"""pytest-benchmark: ``tvnumba.tv`` and ``tvnumba.tv_value_and_grad`` against baselines.

One group per (job, shape, β, norm), each with three entries measured in the same run:

* ``tvnumba``: the Numba kernel (``tv_value_and_grad`` writes into a preallocated
  ``out``);
* ``numpy``: :func:`bench_tv.numpy_tv_value_and_grad`, a vectorised NumPy
  implementation of the same formula in the input dtype;
* ``copy`` (the group's baseline): ``np.copyto`` moving the bytes the kernel must move
  at least.  ``tv`` reads ``u`` once (``u.nbytes``): the copy takes half of ``u`` into a
  half-size buffer (read + write = ``u.nbytes``, as ``bench_tv.py``'s floor of half a
  copy).  ``tv_value_and_grad`` reads ``u`` and writes the gradient
  (``2 · u.nbytes``): ``np.copyto(grad, u)``.

``extra_info``: ``bytes_moved`` (that minimum, the same for the three entries of a
group) and ``GB/s`` = bytes_moved / median time, an effective bandwidth.
"""

from __future__ import annotations

import numpy as np
import pytest
from bench_common import TV_BETAS, record
from bench_tv import numpy_tv_value_and_grad

import tvnumba

SHAPES = {"2048x2048": (2048, 2048), "128x128x128": (128, 128, 128)}
_DATA: dict = {}


def data(shape_name):
    """float32 uniform [0, 1) input and a gradient buffer, allocated once per shape."""
    if shape_name not in _DATA:
        u = np.random.default_rng(0).random(SHAPES[shape_name]).astype(np.float32)
        _DATA[shape_name] = (u, np.empty_like(u))
    return _DATA[shape_name]


@pytest.mark.parametrize("impl", ["tvnumba", "numpy", "copy"])
@pytest.mark.parametrize("norm", ["iso", "aniso"])
@pytest.mark.parametrize("beta", TV_BETAS, ids=lambda b: f"beta{b:g}")
@pytest.mark.parametrize("job", ["tv", "tv_value_and_grad"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_tv(benchmark, shape, job, beta, norm, impl):
    u, grad = data(shape)
    iso = norm == "iso"
    benchmark.group = f"{job} {shape} float32 β={beta:g} {norm}"
    if job == "tv":
        nbytes = u.nbytes
        flat = u.reshape(-1)
        half = flat[: flat.size // 2]
        buf = np.empty_like(half)
        fns = {
            "tvnumba": lambda: tvnumba.tv(u, beta, isotropic=iso),
            "numpy": lambda: numpy_tv_value_and_grad(u, beta, iso, want_grad=False),
            "copy": lambda: np.copyto(buf, half),
        }
    else:
        nbytes = 2 * u.nbytes
        fns = {
            "tvnumba": lambda: tvnumba.tv_value_and_grad(u, beta, isotropic=iso, out=grad),
            "numpy": lambda: numpy_tv_value_and_grad(u, beta, iso, want_grad=True),
            "copy": lambda: np.copyto(grad, u),
        }
    benchmark(fns[impl])
    record(benchmark, label=impl, baseline=impl == "copy", bytes_moved=nbytes)
