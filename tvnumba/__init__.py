"""tvnumba: fast, exact β-order total variation on NumPy and CuPy arrays.

The public API, re-exported from its modules.
"""

from .distance import total_variation_distance
from .restoration import DenoiseInfo, denoise_tv_beta
from .solvers import SolveInfo
from .tv import tv, tv_grad, tv_value_and_grad

__version__ = "0.1.0"

__all__ = [
    "tv",
    "tv_grad",
    "tv_value_and_grad",
    "denoise_tv_beta",
    "DenoiseInfo",
    "SolveInfo",
    "total_variation_distance",
    "__version__",
]
