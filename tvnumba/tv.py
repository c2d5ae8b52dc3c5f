"""β-order total variation: value, gradient, and both in one pass."""

from __future__ import annotations

from ._tv_core import tv_compute
from .backends import is_dask_array

__all__ = ["tv", "tv_grad", "tv_value_and_grad"]

_PARAMS_DOC = """\
    u : ndarray
        Image, volume, signal or stack of them (NumPy; CuPy and other
        ``__cuda_array_interface__`` arrays run on the GPU).  Integer and
        bool arrays are taken as float64 values, unscaled.
    beta : float, optional
        Order β > 0.  1 is Rudin-Osher-Fatemi TV, 2 the squared gradient
        (Tikhonov), β < 1 the sparsity-promoting non-convex family.
    axes : int or tuple of int, optional
        Spatial axes along which differences are taken.  Default: every
        axis but ``channel_axis``.  Any other axis is a batch axis.
    channel_axis : int, optional
        Axis of channels coupled inside the norm (colour/vectorial TV).
        ``None`` (default) for grayscale data.
    spacing : float or sequence of float, optional
        Grid spacing ``h``, one value or one per spatial axis (in the order
        of ``axes``, ascending axis order when ``axes=None``).
    isotropic : bool, optional
        ``True`` (default) couples the differences of a pixel inside one
        norm; ``False`` sums a term per difference (and per channel).
    smoothing : float, optional
        ``s >= 0`` added inside the power; makes the functional smooth.
    reduction : {"sum", "mean", "none"}, optional
        ``"sum"`` returns a float (accumulated in float64), ``"mean"``
        divides it by the number of pixels times batch items, ``"none"``
        returns a float64 array with one value per batch item.
    device : {None, "cpu", "cuda"}, optional
        ``None`` runs where ``u`` lives.  ``"cuda"`` moves a NumPy array to
        the GPU and the gradient back."""

_NOTES_DOC = r"""
    With forward differences :math:`(D_d u)_p = (u_{p+e_d} - u_p)/h_d`
    (zero on the last slice: Neumann boundary),

    .. math::

        TV_\beta(u) = \sum_p \Big(\sum_c \sum_d (D_d u)_{p,c}^2 + s^2\Big)^{\beta/2}

    (isotropic) or :math:`\sum_p \sum_c \sum_d ((D_d u)_{p,c}^2 + s^2)^{\beta/2}`
    (anisotropic).  The gradient is :math:`\sum_d D_d^T (w \odot D_d u)` with
    :math:`w = \beta (|\nabla u|^2 + s^2)^{\beta/2 - 1}`, taken as 0 where
    the base is 0 (a subgradient for β ≥ 1; no Inf for β < 1)."""


_RAISES_DOC = """\
    Raises
    ------
    ValueError
        β <= 0; a negative or non-finite ``smoothing`` or ``spacing``, or the
        wrong number of spacings; an axis out of range, repeated, or both
        spatial and the ``channel_axis``; an empty array; NaN or Inf in
        ``u``; a value or gradient beyond float64's range.
    TypeError
        ``u`` not a real numeric array (complex, object, masked), or an
        argument of the wrong type (a bool axis, a string β)."""

_REFS_DOC = """\
    References
    ----------
    .. [1] L. I. Rudin, S. Osher and E. Fatemi, "Nonlinear total variation
       based noise removal algorithms", Physica D 60 (1992), 259-268."""

_OUT_DOC = """\
    out : ndarray, optional
        Where to write the gradient: ``u``'s shape and the gradient dtype (it
        may overlap ``u``: the gradient is then computed aside first)."""


def _docstring(func):
    """Fill the shared sections: ``%(params)s`` (with ``out``: ``%(params_out)s``) and
    ``%(tail)s`` (Raises,
    See Also naming the other two functions, Notes and References)."""
    trio = ("tv", "tv_grad", "tv_value_and_grad")
    see_also = ", ".join([n for n in trio if n != func.__name__]
                         + (["denoise_tv_beta"] if func.__name__ != "tv" else []))
    tail = (f"{_RAISES_DOC}\n\n    See Also\n    --------\n    {see_also}\n\n"
            f"    Notes\n    -----\n{_NOTES_DOC}\n\n{_REFS_DOC}")
    params = f"    Parameters\n    ----------\n{_PARAMS_DOC}"
    for key, text in (("params_out", f"{params}\n{_OUT_DOC}"), ("params", params),
                      ("tail", tail)):
        func.__doc__ = func.__doc__.replace(f"%({key})s", text)
    return func


def _run(u, beta, want_grad, out, axes, channel_axis, spacing, isotropic, smoothing,
         reduction, device, want_value=True):
    """``(value, grad or None)``: in memory, or lazily for a Dask array."""
    kw = dict(axes=axes, channel_axis=channel_axis, spacing=spacing, isotropic=isotropic,
              smoothing=smoothing, reduction=reduction, device=device)
    if is_dask_array(u):
        if out is not None:
            raise TypeError("out= is not supported for Dask arrays (the result is lazy)")
        from . import dask as tv_dask

        return tv_dask.tv_value_and_grad(u, beta, _want=(want_value, want_grad), **kw)
    return tv_compute(u, beta, want_grad=want_grad, out=out, **kw)


@_docstring
def tv(u, beta: float = 1.0, *, axes=None, channel_axis: int | None = None,
       spacing=1.0, isotropic: bool = True, smoothing: float = 0.0,
       reduction: str = "sum", device: str | None = None):
    """β-order total variation of an n-D array.

%(params)s

    Returns
    -------
    value : float or ndarray
        The reduced TV (a Python float), or with ``reduction="none"`` a
        float64 array over the batch axes.

%(tail)s

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba import tv
    >>> u = np.array([0.0, 1.0, 3.0])
    >>> tv(u)  # |1 - 0| + |3 - 1|
    3.0
    >>> tv(u, beta=2)  # 1**2 + 2**2
    5.0
    >>> img = np.zeros((4, 4)); img[:, 2:] = 1.0
    >>> tv(img)  # one vertical edge of height 4
    4.0
    >>> stack = np.stack([img, 2 * img])  # a batch of two images
    >>> tv(stack, axes=(1, 2), reduction="none")
    array([4., 8.])
    """
    value, _ = _run(u, beta, False, None, axes, channel_axis, spacing, isotropic,
                    smoothing, reduction, device)
    return value


@_docstring
def tv_grad(u, beta: float = 1.0, *, axes=None, channel_axis: int | None = None,
            spacing=1.0, isotropic: bool = True, smoothing: float = 0.0,
            reduction: str = "sum", device: str | None = None, out=None):
    """Gradient of :func:`tv` with respect to ``u``.

%(params_out)s

    Returns
    -------
    grad : ndarray
        Same shape as ``u``; float32 for float16/float32 input, float64
        otherwise.  With ``reduction="mean"`` it is the gradient of the
        mean; with ``"none"`` the gradient of the sum (each batch item's own
        gradient).

%(tail)s

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba import tv_grad
    >>> tv_grad(np.array([0.0, 1.0, 3.0]))  # -sign of the differences, transposed
    array([-1.,  0.,  1.])
    >>> tv_grad(np.array([0.0, 1.0, 3.0]), beta=2)
    array([-2., -2.,  4.])
    """
    _, grad = _run(u, beta, True, out, axes, channel_axis, spacing, isotropic,
                   smoothing, reduction, device, want_value=False)
    return grad


@_docstring
def tv_value_and_grad(u, beta: float = 1.0, *, axes=None, channel_axis: int | None = None,
                      spacing=1.0, isotropic: bool = True, smoothing: float = 0.0,
                      reduction: str = "sum", device: str | None = None, out=None):
    """:func:`tv` and :func:`tv_grad` in one fused pass over ``u``.

    This is what gradient-based optimisers call: it reads ``u`` once and
    computes every weight once, so it costs about as much as
    :func:`tv_grad` alone.

%(params_out)s

    Returns
    -------
    value : float or ndarray
        As returned by :func:`tv`.
    grad : ndarray
        As returned by :func:`tv_grad`.

%(tail)s

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba import tv_value_and_grad
    >>> rng = np.random.default_rng(0)
    >>> u = rng.random((64, 64), dtype=np.float32)
    >>> value, grad = tv_value_and_grad(u, beta=1.5, smoothing=0.01)
    >>> grad.dtype, grad.shape
    (dtype('float32'), (64, 64))
    """
    return _run(u, beta, True, out, axes, channel_axis, spacing, isotropic,
                smoothing, reduction, device)
