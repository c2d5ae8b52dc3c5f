"""Backends: where a computation's arrays live and which kernels run on them.

:func:`select` chooses one per public call, from the kind of the input array
and ``device``; :meth:`Backend.for_plan` then hands data with more spatial
axes than the kernels are compiled for to the whole-array backend.  This is
the only package that asks what kind of array it holds.

=========  ===============================================  =========================
backend    arrays                                           kernels
=========  ===============================================  =========================
``cpu``    NumPy                                            Numba ``@njit(parallel)``
``cuda``   Numba device arrays, CuPy, any                   Numba ``@cuda.jit``
           ``__cuda_array_interface__``; NumPy with
           ``device="cuda"`` (moved there and back)
``array``  NumPy or CuPy, any number of spatial axes        whole-array operations
=========  ===============================================  =========================

The CUDA backend is imported lazily: ``import tvnumba`` never imports
``numba.cuda``.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_device
from .base import Backend

__all__ = ["Backend", "select", "array_kind", "is_gpu_array", "is_dask_array",
           "kernel_cache_dir"]


def array_kind(a) -> str:
    """The library an array comes from: ``"numpy"``, ``"cupy"``, ``"numba"``,
    ``"torch"``, ...  (the top-level module of its type)."""
    if isinstance(a, np.ndarray):
        return "numpy"
    return type(a).__module__.split(".")[0]


def is_numba_array(a) -> bool:
    """A Numba device array (or the CUDA simulator's stand-in for one, which
    carries ``__cuda_ndarray__`` but no ``__cuda_array_interface__``)."""
    return bool(getattr(type(a), "__cuda_ndarray__", False))


def is_gpu_array(a) -> bool:
    return is_numba_array(a) or (
        hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray))


def is_dask_array(a) -> bool:
    """A Dask array (checked without importing Dask when it is not loaded)."""
    import sys

    da = sys.modules.get("dask.array")
    return da is not None and isinstance(a, da.Array)


def kernel_cache_dir() -> str | None:
    """The folder where Numba caches the CPU kernels (None where it cannot tell)."""
    from .cpu import solver_kernels

    cache = getattr(getattr(solver_kernels.cp_dual_step, "kernel", None), "_cache", None)
    return getattr(cache, "cache_path", None)


def select(u, device=None, *, solver: bool = False) -> Backend:
    """The backend of one public call on ``u`` with ``device``.

    ``device=None`` runs where ``u`` lives; ``"cuda"`` moves host input to
    the GPU (and results back); ``"cpu"`` refuses GPU arrays.  ``solver``:
    the call runs a solver (whose GPU path needs CuPy as well).
    """
    device = check_device(device)
    on_gpu = is_gpu_array(u)
    if device == "cpu" and on_gpu:
        raise ValueError(
            "device='cpu' was given a GPU array; copy it to the host first "
            "(e.g. cupy.asnumpy(u)) or use device=None")
    if device == "cuda" or on_gpu:
        from .cuda import CudaBackend

        return CudaBackend(host_input=not on_gpu, numba_input=is_numba_array(u),
                           kind=array_kind(u), solver=solver)
    from .cpu import CpuBackend

    return CpuBackend()
