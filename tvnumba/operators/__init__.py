"""Linear operators ``A`` of inverse problems, as data terms ``½‖A u − f‖²``
for :func:`tvnumba.solvers.solve`."""

from .convolution import Convolution
from .linear import LinearOperatorTerm

__all__ = ["Convolution", "LinearOperatorTerm"]
