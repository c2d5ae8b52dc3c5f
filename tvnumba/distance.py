"""Total variation distance between probability distributions."""

from __future__ import annotations

import numpy as np

__all__ = ["total_variation_distance"]


def total_variation_distance(p, q, axis=None, *, atol: float = 1e-8):
    r"""Total variation distance ½ Σ|p − q| of two probability distributions.

    Not to be confused with the total variation of an image (:func:`tv`):
    this is the distance between probability measures, in [0, 1].

    Parameters
    ----------
    p, q : array_like
        Non-negative probability vectors (or arrays of them) of the same
        shape.  Each distribution must already sum to 1 (within ``atol``):
        they are checked, not normalised, so that an unnormalised histogram
        is reported rather than silently rescaled.
    axis : int or tuple of int, optional
        Axes that hold one distribution.  ``None`` (default): the whole
        array is one distribution.
    atol : float, optional
        Tolerance of the sum-to-one check: a finite number >= 0.

    Returns
    -------
    float or ndarray
        The distance, a float for ``axis=None``, else an array over the
        remaining axes.

    Raises
    ------
    ValueError
        If the shapes differ, an entry is negative or not finite, or a
        distribution does not sum to 1.

    See Also
    --------
    tvnumba.tv : the total variation of an image (a different quantity).

    Notes
    -----
    For discrete distributions :math:`\delta(p, q) = \sup_A |p(A) - q(A)|
    = \tfrac12 \sum_i |p_i - q_i|`, the largest difference of the
    probabilities the two assign to one event [1]_.

    References
    ----------
    .. [1] A. L. Gibbs and F. E. Su, "On choosing and bounding probability
       metrics", International Statistical Review 70 (2002), 419-435.

    Examples
    --------
    >>> from tvnumba import total_variation_distance
    >>> total_variation_distance([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    0.5
    >>> total_variation_distance([[1, 0], [0.5, 0.5]], [[0, 1], [0.5, 0.5]], axis=1)
    array([1., 0.])
    """
    from ._validate import check_nonneg

    atol = check_nonneg("atol", atol)
    arrays = []
    for name, a in (("p", p), ("q", q)):
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if a.size == 0:
            raise ValueError(f"{name} must not be empty")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or Inf values")
        if np.any(a < 0):
            raise ValueError(f"{name} must be non-negative, got min({name})={a.min()!r}")
        arrays.append(a)
    p, q = arrays
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape} and {q.shape}")
    for name, a in (("p", p), ("q", q)):
        sums = a.sum(axis=axis)
        if not np.allclose(sums, 1.0, rtol=0, atol=atol):
            bad = np.ravel(sums)[np.argmax(np.abs(np.ravel(sums) - 1))]
            raise ValueError(
                f"{name} must sum to 1 along axis={axis!r} (a probability distribution), "
                f"got a sum of {bad!r}; normalise it first, e.g. {name} / {name}.sum()"
            )
    # Sums within atol of 1 can put ½ Σ|p − q| slightly above 1: clip to [0, 1].
    d = np.clip(0.5 * np.abs(p - q).sum(axis=axis), 0.0, 1.0)
    return float(d) if np.ndim(d) == 0 else d
