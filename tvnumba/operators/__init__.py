"""Linear operators ``A`` of inverse problems (forward models and their exact adjoints),
and their data terms ``½‖A u − f‖²`` for :func:`tvnumba.solvers.solve`."""

from .convolution import Convolution
from .linear import LinearOperatorTerm
from .radon import RadonGeometry, RadonTerm, radon, radon_adjoint

__all__ = ["Convolution", "LinearOperatorTerm", "radon", "radon_adjoint", "RadonGeometry",
           "RadonTerm"]
