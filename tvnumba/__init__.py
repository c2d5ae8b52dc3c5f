"""tvnumba: fast, exact β-order total variation on NumPy and CuPy arrays.

The public API, re-exported from its modules.
"""

# First: it chooses Numba's threading layer, which must happen before any kernel starts
# Numba's thread pool (see tvnumba/_threads.py).
from ._threads import get_num_threads, set_num_threads, thread_limit  # isort: skip

from .distance import total_variation_distance
from .restoration import (deconvolve_tv_beta, denoise_tv_beta, inpaint_tv_beta,
                          reconstruct_tv_beta, solve_tv_beta)
from .solvers import SolveInfo
from .tv import tv, tv_grad, tv_value_and_grad

__version__ = "0.1.0"

__all__ = [
    "tv",
    "tv_grad",
    "tv_value_and_grad",
    "denoise_tv_beta",
    "solve_tv_beta",
    "deconvolve_tv_beta",
    "inpaint_tv_beta",
    "reconstruct_tv_beta",
    "SolveInfo",
    "total_variation_distance",
    "set_num_threads",
    "get_num_threads",
    "thread_limit",
    "__version__",
]
