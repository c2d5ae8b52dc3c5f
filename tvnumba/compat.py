"""Exact NumPy reproductions of the TV losses people copy around.

* :func:`torch_tv_loss` -- the widely copied PyTorch ``TVLoss`` module (NCHW)::

      class TVLoss(nn.Module):
          def __init__(self, TVLoss_weight=1):
              ...
          def forward(self, x):
              batch_size = x.size()[0]
              h_x, w_x = x.size()[2], x.size()[3]
              count_h = self._tensor_size(x[:, :, 1:, :])   # C * (H-1) * W
              count_w = self._tensor_size(x[:, :, :, 1:])   # C * H * (W-1)
              h_tv = torch.pow(x[:, :, 1:, :] - x[:, :, :h_x-1, :], 2).sum()
              w_tv = torch.pow(x[:, :, :, 1:] - x[:, :, :, :w_x-1], 2).sum()
              return self.TVLoss_weight * 2 * (h_tv/count_h + w_tv/count_w) / batch_size

* :func:`tf_total_variation` -- ``tf.image.total_variation`` (HWC -> scalar,
  NHWC -> one value per image): the unnormalised anisotropic β = 1 TV.

Both run on the same kernels as :func:`tvnumba.tv`: β = 2 along one axis at a
time (each direction has its own normalisation) and anisotropic β = 1.  The
gradients are the exact gradients of these functions (for ``|·|`` the
subgradient 0 at a tie, as TensorFlow's ``abs`` gives).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from . import _validate as V
from .backends import select
from .tv import tv as _tv_value
from .tv import tv_grad as _tv_grad

__all__ = [
    "torch_tv_loss",
    "torch_tv_loss_grad",
    "tf_total_variation",
    "tf_total_variation_grad",
    "tf_tv_loss",
    "tf_tv_loss_grad",
]


_DOCS = {
    "torch_params": '    Parameters\n    ----------\n    x : ndarray, shape (N, C, H, W)\n        Batch of images, channels first, H, W >= 2.\n    weight : float, optional\n        ``TVLoss_weight``.\n    device : {None, "cpu", "cuda"}, optional\n        As in :func:`tvnumba.tv`.',
    "torch_raises": '    Raises\n    ------\n    ValueError\n        ``x`` not 4-D, empty, with H or W below 2, or holding NaN/Inf;\n        ``weight`` not finite.\n    TypeError\n        ``x`` not a real numeric array, or ``weight`` not a real number.',
    "tf_x": '    Parameters\n    ----------\n    x : ndarray, shape (H, W, C) or (N, H, W, C)\n        One image or a batch, channels last.',
    "tf_raises": '    Raises\n    ------\n    ValueError\n        ``x`` not 3-D or 4-D, empty, or holding NaN/Inf.\n    TypeError\n        ``x`` not a real numeric array.',
    "device": '    device : {None, "cpu", "cuda"}, optional\n        As in :func:`tvnumba.tv`.',
    "tf_weight_device": ('    weight : float, optional\n        The loss weight.\n'
                         '    device : {None, "cpu", "cuda"}, optional\n'
                         '        As in :func:`tvnumba.tv`.'),
}


def _docstring(func):
    """Fill the shared docstring sections (one text for every function that has them)."""
    for key, text in _DOCS.items():
        func.__doc__ = func.__doc__.replace(f"%({key})s", text)
    return func


def _check_ndim(x, ndims: tuple[int, ...], layout: str, device=None):
    """``x`` checked here, so that every error names ``x`` (``tv`` would say
    ``u``): not masked, real numeric, the layout's rank, not empty, finite."""
    V.check_array(x, "x")
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        x = np.asarray(x)
    V.float_dtype(x.dtype, "x")
    if x.ndim not in ndims:
        raise ValueError(f"x must be a {layout} array ({' or '.join(map(str, ndims))}-D), "
                         f"got x.shape={tuple(x.shape)}")
    if x.size == 0:
        raise ValueError(f"x must not be empty, got x.shape={tuple(x.shape)}")
    select(x, device).check_finite(x, "x")
    return x


def _check_weight(weight) -> float:
    if isinstance(weight, (bool, np.bool_)) or not isinstance(weight, Real):
        raise TypeError(f"weight must be a real number, got weight={weight!r}")
    weight = float(weight)
    if not math.isfinite(weight):
        raise ValueError(f"weight must be finite, got weight={weight!r}")
    return weight


def _torch_args(x, weight, device):
    x = _check_ndim(x, (4,), "NCHW", device)
    weight = _check_weight(weight)
    n, c, h, w = x.shape
    if h < 2 or w < 2:
        # PyTorch divides by count_h = C (H-1) W = 0 here and returns NaN.
        raise ValueError(f"TVLoss needs H >= 2 and W >= 2, got x.shape={tuple(x.shape)}")
    # One single-axis β = 2 pass per direction with unit spacing, so the
    # squared differences (and the float32 result) are exactly PyTorch's;
    # the counts divide afterwards, in float64.
    factor = 2.0 * weight / n
    return x, ((2, factor / (c * (h - 1) * w)), (3, factor / (c * h * (w - 1))))


@_docstring
def torch_tv_loss(x, weight: float = 1.0, *, device: str | None = None) -> float:
    """The PyTorch ``TVLoss`` module's value on an NCHW array.

%(torch_params)s

    Returns
    -------
    float
        ``2 weight (Σ(D_h x)² / (C(H-1)W) + Σ(D_w x)² / (CH(W-1))) / N``.

%(torch_raises)s

    See Also
    --------
    torch_tv_loss_grad, tvnumba.tv

    Notes
    -----
    The module computes ``2 weight (h_tv / count_h + w_tv / count_w) / N`` with
    ``h_tv = Σ (x[:, :, 1:, :] − x[:, :, :-1, :])²``, ``count_h = C (H−1) W``
    and ``w_tv``, ``count_w`` likewise along W: an anisotropic β = 2 TV with
    each direction normalised by its own number of differences.  Each
    direction is one single-axis pass of :func:`tvnumba.tv` (β = 2), so the
    float32 squares are PyTorch's; the counts divide in float64.

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import torch_tv_loss
    >>> ch = np.array([[1, 2, 3], [2, 3, 4], [3, 4, 5]], dtype=np.float32)
    >>> torch_tv_loss(np.stack([ch, ch])[None])
    4.0
    """
    x, terms = _torch_args(x, weight, device)
    return sum(f * _tv_value(x, 2.0, axes=a, device=device) for a, f in terms)


@_docstring
def torch_tv_loss_grad(x, weight: float = 1.0, *, device: str | None = None):
    """Gradient of :func:`torch_tv_loss` with respect to ``x`` (what
    ``loss.backward()`` leaves in ``x.grad``).

%(torch_params)s

    Returns
    -------
    ndarray
        ``x``'s shape; float32 for float16/float32 input, float64 otherwise.

%(torch_raises)s

    See Also
    --------
    torch_tv_loss

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import torch_tv_loss_grad
    >>> ch = np.array([[1, 2, 3], [2, 3, 4], [3, 4, 5]], dtype=np.float64)
    >>> torch_tv_loss_grad(np.stack([ch, ch])[None])[0, 0] * 3
    array([[-2., -1.,  0.],
           [-1.,  0.,  1.],
           [ 0.,  1.,  2.]])
    """
    x, ((a0, f0), (a1, f1)) = _torch_args(x, weight, device)
    g = _tv_grad(x, 2.0, axes=a0, device=device)
    g *= g.dtype.type(f0)
    g += g.dtype.type(f1) * _tv_grad(x, 2.0, axes=a1, device=device)
    return g


def _tf_args(x, device):
    x = _check_ndim(x, (3, 4), "HWC or NHWC", device)
    axes = (0, 1) if x.ndim == 3 else (1, 2)
    # Channels are neither coupled nor a batch: the anisotropic sum runs over them.
    return x, dict(beta=1.0, axes=axes, channel_axis=x.ndim - 1, isotropic=False)


@_docstring
def tf_total_variation(x, *, device: str | None = None):
    """``tf.image.total_variation``: Σ|D_h x| + Σ|D_w x| per image.

%(tf_x)s
%(device)s

    Returns
    -------
    float or ndarray
        A float for HWC input, a float64 array of length N for NHWC input.

%(tf_raises)s

    See Also
    --------
    tf_total_variation_grad, tf_tv_loss, tvnumba.tv

    Notes
    -----
    ``tf.image.total_variation`` sums ``|x[1:, :, :] − x[:-1, :, :]|`` and
    ``|x[:, 1:, :] − x[:, :-1, :]|`` over height, width and channels: the
    anisotropic β = 1 TV with the channels neither coupled nor batched.  Its
    gradient uses the subgradient 0 at a tie, as TensorFlow's ``abs`` does.

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import tf_total_variation
    >>> x = np.array([[0, 1], [3, 3]], dtype=np.float32)[..., None]  # HWC
    >>> tf_total_variation(x)  # |3-0| + |3-1| + |1-0| + |3-3|
    6.0
    """
    x, kw = _tf_args(x, device)
    return _tv_value(x, reduction="none" if x.ndim == 4 else "sum", device=device, **kw)


@_docstring
def tf_total_variation_grad(x, *, device: str | None = None):
    """Gradient of ``sum(tf_total_variation(x))`` with respect to ``x``.

%(tf_x)s
%(device)s

    Returns
    -------
    ndarray
        ``x``'s shape (the subgradient 0 where two neighbours are equal).

%(tf_raises)s

    See Also
    --------
    tf_total_variation

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import tf_total_variation_grad
    >>> tf_total_variation_grad(np.array([[0.0, 1.0], [3.0, 3.0]])[..., None])[..., 0]
    array([[-2.,  0.],
           [ 1.,  1.]])
    """
    x, kw = _tf_args(x, device)
    return _tv_grad(x, device=device, **kw)


@_docstring
def tf_tv_loss(x, weight: float = 1.0, *, device: str | None = None) -> float:
    """``weight * tf.reduce_sum(tf.image.total_variation(x))``.

%(tf_x)s
%(tf_weight_device)s

    Returns
    -------
    float

%(tf_raises)s

    See Also
    --------
    tf_tv_loss_grad, tf_total_variation

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import tf_tv_loss
    >>> x = np.zeros((2, 4, 4, 3)); x[:, :, 2:, :] = 1.0  # two images, one edge each
    >>> tf_tv_loss(x, weight=0.5)  # 0.5 * 2 images * 3 channels * 4 rows
    12.0
    """
    weight = _check_weight(weight)
    x, kw = _tf_args(x, device)
    return weight * _tv_value(x, device=device, **kw)


@_docstring
def tf_tv_loss_grad(x, weight: float = 1.0, *, device: str | None = None):
    """Gradient of :func:`tf_tv_loss` with respect to ``x``.

%(tf_x)s
%(tf_weight_device)s

    Returns
    -------
    ndarray
        ``x``'s shape.

%(tf_raises)s

    See Also
    --------
    tf_tv_loss

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.compat import tf_tv_loss_grad
    >>> tf_tv_loss_grad(np.array([[0.0, 1.0], [3.0, 3.0]])[..., None], weight=2)[..., 0]
    array([[-4.,  0.],
           [ 2.,  2.]])
    """
    weight = _check_weight(weight)
    x, kw = _tf_args(x, device)
    g = _tv_grad(x, device=device, **kw)
    g *= g.dtype.type(weight)
    return g
