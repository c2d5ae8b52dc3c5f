"""The Numba options of every kernel module, in one place.

CPU kernels take their decorator options from here (:data:`JIT`, :func:`helper`) and
become parallel drivers through :func:`parallel_kernel`, which adds the launch lock of
:mod:`tvnumba._threads`.  CUDA kernels take :func:`cuda_jit_options` and the launch
settings (:data:`THREADS_PER_BLOCK`, :data:`MAX_BLOCKS`, :data:`WAVES`), which are read
at every launch, so that tests can shrink them for all kernels at once.

Importing this module compiles nothing and does not import ``numba.cuda``.
"""

from __future__ import annotations

from numba import njit
from numba.extending import register_jitable

from ._threads import serialised

#: LLVM fast-math flags of the CPU kernels.  No ``nnan``/``ninf``: NaN and Inf keep their
#: IEEE meaning (the range checks of the TV kernels rely on it); ``reassoc`` lets the
#: float64 row sums vectorise, ``contract`` allows fused multiply-adds, ``arcp`` a
#: reciprocal for ``1/sqrt``.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

#: A compiled CPU function: cached on disk, NumPy's error model (a division by zero gives
#: inf instead of raising), the GIL released.
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)

#: Options of a helper of the kernels (see :func:`helper`).  Numba's own IR inlining
#: (``inline="always"``) is not asked for: the kernels take their specialisation flags at
#: run time, so it would fold nothing away and only copy every branch into each caller
#: (more than twice the compile time of the fused Chambolle-Pock step, for the same speed).
INLINE = dict(fastmath=FASTMATH, error_model="numpy")


def helper(func):
    """A function that only kernels call, compiled with :data:`INLINE` where a kernel
    first calls it (``register_jitable``): no Python or C entry point is built for it and
    LLVM inlines it into its callers.  A cold start compiles a fifth less than with a
    ``njit`` dispatcher per helper (the kernels' speed is the same).  Called from Python,
    it is the plain Python function."""
    return register_jitable(no_cfunc_wrapper=True, **INLINE)(func)


#: A parallel driver launched from Python (see :func:`parallel_kernel`).
PARALLEL = dict(JIT, parallel=True)

#: As :data:`PARALLEL`, without fast-math: for kernels that must round as the reference
#: they reproduce (the Radon projector sums its samples in scikit-image's order).
PARALLEL_EXACT = dict(cache=True, error_model="numpy", nogil=True, parallel=True)


def parallel_kernel(func=None, *, exact: bool = False):
    """``njit`` with :data:`PARALLEL` (or :data:`PARALLEL_EXACT`), wrapped so that two
    Python threads never launch parallel regions at once under a threading layer that
    is not thread-safe (:func:`tvnumba._threads.serialised`)."""
    options = PARALLEL_EXACT if exact else PARALLEL

    def wrap(f):
        return serialised(njit(**options)(f))

    return wrap if func is None else wrap(func)


# --- CUDA ---------------------------------------------------------------------------
#: Threads per block of every launch (a power of two ≤ 1024).
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks of one launch; ``None`` sizes the grid from the device
#: (resident blocks × :data:`WAVES`).
MAX_BLOCKS: int | None = None
#: Full waves of resident blocks launched when the input is large.
WAVES = 4


def cuda_jit_options(simulator: bool) -> tuple[dict, dict]:
    """``(kernel options, device-function options)`` of ``numba.cuda.jit``.

    No fast-math on the GPU: NaN/Inf stay IEEE (the non-finite flags rely on them) and
    float32 results stay close to the CPU kernels'.  ``forceinline`` turns the
    specialisation flags passed to device functions into constants after NVVM inlining.
    The simulator supports neither caching nor ``forceinline``.
    """
    if simulator:
        return dict(cache=False), dict(device=True)
    return dict(cache=True), dict(device=True, forceinline=True)
