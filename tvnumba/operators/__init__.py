"""Linear operators for inverse problems with a TV prior (forward models and
their exact adjoints)."""

from .radon import RadonGeometry, RadonTerm, radon, radon_adjoint

__all__ = ["radon", "radon_adjoint", "RadonGeometry", "RadonTerm"]
