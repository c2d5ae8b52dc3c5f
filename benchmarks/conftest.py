"""pytest-benchmark configuration for ``benchmarks/test_bench_*.py``.

Run (``testpaths = ["tests"]`` keeps these out of the default test run)::

    python -m pytest benchmarks/ --benchmark-only --benchmark-json=bench.json
    python benchmarks/results_from_json.py bench.json

Every benchmark group holds tvnumba together with its baselines measured in the same
run.  One entry per group carries ``extra_info["baseline"] = True``: the ratio column of
``results_from_json.py`` is relative to it.  Numba compilation is excluded: the
session fixture :func:`warm_jit` makes small calls first.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

# ``from bench_tv import numpy_tv_value_and_grad``: the NumPy baseline lives in the
# hand-written script and is shared, not copied.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # pragma: no cover - without the ``bench`` extra: collect nothing
    collect_ignore_glob = ["test_bench_*.py"]

from bench_common import DENOISE_BETA_WEIGHTS, TV_BETAS


@pytest.fixture(scope="session", autouse=True)
def warm_jit():
    """Compile every kernel the benchmarks time, on small inputs (same dtypes/ndims)."""
    import tvnumba

    rng = np.random.default_rng(0)
    for shape in ((32, 32), (8, 8, 8)):
        u = rng.random(shape).astype(np.float32)
        for beta in TV_BETAS:
            for iso in (True, False):
                tvnumba.tv(u, beta, isotropic=iso)
                tvnumba.tv_value_and_grad(u, beta, isotropic=iso, out=np.empty_like(u))
    f = rng.random((64, 64))
    for beta, w in DENOISE_BETA_WEIGHTS.items():
        tvnumba.denoise_tv_beta(f, w, beta)
