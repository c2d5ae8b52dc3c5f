"""The solvers, what each one handles, and how ``method="auto"`` picks one.

Adding a solver is one module and one :class:`Solver` entry in
:data:`SOLVERS`: its ``run(problem)`` returns ``(u5, SolveInfo)``, ``refuses``
says why it cannot take a problem (or None), and ``auto`` whether
``method="auto"`` should pick it (the first entry that says yes wins).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .admm import admm
from .dct import dct
from .lbfgs import lbfgs
from .mm import mm
from .primal_dual import primal_dual


@dataclass(frozen=True)
class Solver:
    name: str
    run: Callable
    #: ``refuses(beta, smoothing, data) -> str | None``: the reason it cannot solve it.
    refuses: Callable
    #: ``auto(beta, smoothing, data) -> bool``: ``method="auto"`` picks it.
    auto: Callable
    #: The iteration cap when ``max_num_iter=None`` (at least; see :meth:`cap`).
    max_iter: int
    summary: str
    #: Needs a smoothing ``s > 0``: with ``smoothing=0`` the solver entry
    #: passes an internal one (:func:`tvnumba.solvers.mm.internal_smoothing`).
    needs_smoothing: bool = False
    #: For a solver whose stopping quantity falls as ``1/k²``: the cap grows to
    #: ``root_eps_iters / √eps`` for tight tolerances.
    root_eps_iters: float = 0.0

    def cap(self, eps: float) -> int:
        """The iteration cap for ``max_num_iter=None`` at tolerance ``eps``."""
        return max(self.max_iter, math.ceil(self.root_eps_iters / math.sqrt(eps)))


def _quadratic_only(name, data):
    """The refusal of a solver of ``½‖Au − f‖²`` alone, or None."""
    if data.loss.quadratic:
        return None
    return (f"method={name!r} solves the least-squares data term only; the "
            f"{data.loss.name} loss (noise={data.loss.name!r}) is solved by method='cp' "
            f"with beta >= 1 and smoothing=0")


def _cp_power(beta, smoothing, data) -> bool:
    """β > 1 without smoothing and the Poisson loss: the primal–dual with the conjugate
    of ``weight |·|^β`` in place of the ball."""
    return beta > 1.0 and smoothing == 0.0 and not data.loss.quadratic


def _cp_refuses(beta, smoothing, data):
    if _cp_power(beta, smoothing, data):
        return None
    if not data.loss.quadratic and (beta != 1.0 or smoothing != 0.0):
        return (f"method='cp' solves the {data.loss.name} loss with beta >= 1 and "
                f"smoothing=0, got beta={beta}, smoothing={smoothing}")
    if beta != 1.0 or smoothing != 0.0:
        return (f"method='cp' solves beta=1 with smoothing=0 only, got beta={beta}, "
                f"smoothing={smoothing}; use method='lbfgs' or 'auto'")
    return None


def _admm_refuses(beta, smoothing, data):
    if beta != 1.0 or smoothing != 0.0:
        return (f"method='admm' solves beta=1 with smoothing=0 only, got beta={beta}, "
                f"smoothing={smoothing}; use method='lbfgs' or 'auto'")
    if not data.loss.quadratic:
        return _quadratic_only("admm", data)
    if data.fft_split() is None:
        return (f"method='admm' needs a convolution data term (an FFT split), got "
                f"{type(data).__name__}; use method='cp' or 'auto'")
    return None


def _dct_refuses(beta, smoothing, data):
    if not data.loss.quadratic:
        return _quadratic_only("dct", data)
    if beta != 2.0:
        return f"method='dct' solves beta=2 only, got beta={beta}"
    if not data.dct_diagonal:
        return (f"method='dct' needs a data term diagonal in the DCT basis, got "
                f"{type(data).__name__}; use method='lbfgs' or 'auto'")
    return None


def _lbfgs_refuses(beta, smoothing, data):
    return _quadratic_only("lbfgs", data)


def _mm_refuses(beta, smoothing, data):
    if not data.loss.quadratic:
        return _quadratic_only("mm", data)
    if beta > 2.0:
        return (f"method='mm' needs beta <= 2 (a concave power), got beta={beta}; "
                "use method='lbfgs'")
    return None


#: ``max_num_iter=None`` for ``"cp"``: ``max(10 000, 50/√eps)`` (50 000 at eps 1e-6,
#: 500 000 at 1e-8).  Accelerated CP's gap falls about as 1/k²: natural images at
#: weights up to 3 need up to 20/√eps iterations, so 50 leaves 2.5× to spare; the
#: default eps (1e-3) keeps 10 000.
CP_ROOT_EPS_ITERS = 50.0

SOLVERS: dict[str, Solver] = {s.name: s for s in (
    Solver("admm", admm, _admm_refuses,
           lambda beta, s, data: (beta == 1.0 and s == 0.0 and data.loss.quadratic
                                  and data.fft_split() is not None), 10000,
           "ADMM with an exact FFT step, beta = 1 deconvolution",
           root_eps_iters=CP_ROOT_EPS_ITERS),
    Solver("cp", primal_dual, _cp_refuses,
           lambda beta, s, data: (beta == 1.0 and s == 0.0) or _cp_power(beta, s, data), 10000,
           "primal-dual (Chambolle-Pock), beta = 1 without smoothing (beta >= 1 for counts)",
           root_eps_iters=CP_ROOT_EPS_ITERS),
    Solver("dct", dct, _dct_refuses,
           lambda beta, s, data: beta == 2.0 and data.dct_diagonal, 1,
           "exact DCT-II solve, beta = 2"),
    Solver("lbfgs", lbfgs, _lbfgs_refuses,
           lambda beta, s, data: beta >= 1.0, 3000,
           "L-BFGS, smooth convex cases (beta > 1, or beta = 1 with smoothing)"),
    Solver("mm", mm, _mm_refuses,
           lambda beta, s, data: beta < 1.0, 200,
           "majorize-minimize, beta <= 2 (the solver of beta < 1)", needs_smoothing=True),
)}

METHODS = ("auto",) + tuple(SOLVERS)


def pick(method: str, beta: float, smoothing: float, data) -> Solver:
    """The solver for ``method`` (checked) or, for ``"auto"``, the first that fits."""
    solver = (next(s for s in SOLVERS.values() if s.auto(beta, smoothing, data))
              if method == "auto" else SOLVERS[method])
    reason = solver.refuses(beta, smoothing, data)
    if reason is not None:
        raise ValueError(reason)
    return solver
