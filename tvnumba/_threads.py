"""Numba's threading layer for tvnumba, and the public thread-count controls.

Why tvnumba chooses the threading layer
---------------------------------------
The iterative solvers enter a parallel region two or more times per iteration (hundreds to
thousands of launches per denoise).  With Numba's default on a pip install without TBB (the
GNU OpenMP layer), this goes wrong in two ways:

* OpenMP threads spin while they wait for the next region.  On a machine where other processes
  also run, a spinning thread loses its time slice and every launch waits for it: next to two
  busy processes on 2 cores, a denoise that takes 0.2 s idle took a median 20 s (worst 42 s).
* GNU OpenMP is not fork-safe: after any tvnumba call, a ``multiprocessing`` child created by
  ``fork`` (the Linux default before Python 3.14) aborts with "fork() called from a process
  already using GNU OpenMP".

``OMP_WAIT_POLICY=PASSIVE`` cures the first but not the second.  The ``workqueue`` layer is
fork-safe and does not spin, but aborts the process when two Python threads launch parallel
kernels at the same time.  TBB is fork-safe and thread-safe, does not spin for long, and was
the fastest idle of the three safe choices.  So, unless the user chose otherwise, tvnumba asks Numba for TBB
first and ``workqueue`` second (Numba falls back by itself when TBB cannot be loaded), and
serialises its own kernel launches with a process-wide lock while the layer in use is
``workqueue`` -- the lock makes concurrent threads safe, and costs nothing there, since each
launch already uses every thread.

The ``tbb`` wheel from PyPI puts ``libtbb.so.12`` in ``<prefix>/lib``, which the dynamic loader
does not search in a virtual environment; it is loaded here by path so that Numba finds it.

Measured in a first survey (camera 512², float64, 2 cores, ``NUMBA_NUM_THREADS=2``, best-worst
of 2-3 runs, "loaded" = next to two ``while True: pass`` processes; seconds, β = 1 | β = 0.5;
fork = a ``fork`` Pool after use, 8 threads = concurrent ``tv_value_and_grad``)::

    layer                 idle            loaded                fork   8 threads
    omp (old default)     0.037 | 0.43    0.09-0.59 | 1.7-5.8   abort  ok
    omp, PASSIVE waits    0.050 | 0.66    0.13-0.14 | 1.7       abort  ok
    workqueue             0.055 | 0.91    0.17-0.18 | 1.0-1.2   ok     abort
    workqueue + lock      (as workqueue)                        ok     ok
    tbb 2023.2.0          0.042 | 0.45    0.08-0.16 | 0.82      ok     ok

``benchmarks/bench_threads.py`` compares the library's default with the old one, rounds
alternating (``benchmarks/RESULTS.md``, "Threads: busy machine"): loaded/idle 2.4-3.1× with
workqueue, 3.1-3.8× with TBB, up to 98× with the old default.  With TBB the ratio stayed at
3.0-3.9× on a quiet machine: two threads sharing two cores with two busy processes lose
their time slices in turn, and every parallel region waits for the late one.  So each
iterative solve also asks :func:`threads_for_load` how many threads the other runnable ones
leave cores for (:func:`for_solve`): 1.3-2.5×.  The price, idle and without
TBB: the MM solver (β < 1), with its thousands of short launches, up to 2× slower than with
spinning OpenMP threads.

What the user set always wins: ``NUMBA_THREADING_LAYER``, ``NUMBA_THREADING_LAYER_PRIORITY``
(or ``numba.config`` changed before tvnumba is imported), and a thread pool that Numba already
started.  ``NUMBA_NUM_THREADS`` is never changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import operator
import os
import sys
import threading
from collections.abc import Iterator

import numba
from numba import config

_NUMBA_DEFAULT_PRIORITY = ["tbb", "omp", "workqueue"]
_TVNUMBA_PRIORITY = ["tbb", "workqueue", "omp"]
#: Layers that accept launches from several threads at once (Numba's documentation).
_THREADSAFE = ("tbb", "omp")


def _parallel_module():
    # Private Numba state, read defensively: if it moves, we assume the worst (not started,
    # layer unknown), which only costs the lock.
    try:
        from numba.np.ufunc import parallel
    except ImportError:  # pragma: no cover - layout of another Numba version
        return None
    return parallel


def _pool_started() -> bool:
    return bool(getattr(_parallel_module(), "_is_initialized", False))


def _layer_in_use() -> str | None:
    """The layer Numba loaded, or None before its thread pool starts."""
    return getattr(_parallel_module(), "_threading_layer", None)


def _preload_pip_tbb() -> None:
    """Load ``<prefix>/lib/libtbb.so.12`` (the ``tbb`` wheel) so that Numba's own lookup by
    name finds it; silently nothing when it is absent or unusable."""
    if not sys.platform.startswith("linux"):
        return  # elsewhere the wheel's library lies where the loader looks
    path = os.path.join(sys.prefix, "lib", "libtbb.so.12")
    if not os.path.exists(path):
        return
    with contextlib.suppress(OSError):
        ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


def _choose_layer() -> None:
    if _pool_started():
        return  # too late to choose; whatever runs stays
    # The environment counts even where it repeats Numba's default ("default", the usual
    # priority): the user said it.
    user_layer = ("NUMBA_THREADING_LAYER" in os.environ
                  or str(config.THREADING_LAYER).lower() != "default")
    user_priority = ("NUMBA_THREADING_LAYER_PRIORITY" in os.environ
                     or list(config.THREADING_LAYER_PRIORITY) != _NUMBA_DEFAULT_PRIORITY)
    if str(config.THREADING_LAYER).lower() not in ("omp", "workqueue"):  # TBB may be tried
        _preload_pip_tbb()
    if not user_layer and not user_priority:
        config.THREADING_LAYER_PRIORITY = list(_TVNUMBA_PRIORITY)


_choose_layer()

_lock = threading.Lock()

#: Per Python thread: True once it chose its count (set_num_threads / thread_limit), which
#: turns off the load-aware choice of :func:`for_solve` in that thread.
_explicit = threading.local()


def _new_lock_after_fork() -> None:
    # A lock held by another thread at fork() would stay locked forever in the child.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


#: Non-empty once the thread pool is known to run a thread-safe layer (it cannot change
#: for the life of the process).
_safe: list[bool] = []


def serialised(kernel):
    """Wrap a parallel Numba kernel so that its launches never overlap while the threading
    layer in use is not thread-safe (``workqueue``); a plain call otherwise."""

    @functools.wraps(kernel, updated=())
    def launch(*args):
        if _safe:  # known once the pool runs a thread-safe layer: no lookup per call
            return kernel(*args)
        if _layer_in_use() in _THREADSAFE:
            _safe.append(True)
            return kernel(*args)
        with _lock:
            return kernel(*args)

    launch.kernel = kernel
    return launch


def _check_count(n) -> int:
    if isinstance(n, bool):
        raise TypeError(f"n must be an integer, got {n!r}")
    try:
        count = operator.index(n)
    except TypeError:
        raise TypeError(f"n must be an integer, got {n!r}") from None
    limit = config.NUMBA_NUM_THREADS
    if not 1 <= count <= limit:
        raise ValueError(
            f"n must be between 1 and {limit} (NUMBA_NUM_THREADS), got {count!r}")
    return count


def set_num_threads(n: int) -> None:
    """Set how many threads tvnumba's CPU kernels use, in the calling thread.

    Parameters
    ----------
    n : int
        Number of threads, from 1 to ``numba.config.NUMBA_NUM_THREADS`` (the size of Numba's
        thread pool: the number of cores unless the environment variable
        ``NUMBA_NUM_THREADS`` says otherwise; the pool cannot grow after it started).

    Raises
    ------
    TypeError
        If `n` is not an integer.
    ValueError
        If `n` is outside ``[1, NUMBA_NUM_THREADS]``.

    See Also
    --------
    get_num_threads, thread_limit

    Notes
    -----
    This is :func:`numba.set_num_threads`, so the setting is thread-local: it applies to
    parallel kernels launched from the calling thread only, and it also applies to any other
    Numba code that this thread runs.  Other threads, including threads started later (a
    ``concurrent.futures.ThreadPoolExecutor``, Dask's threaded scheduler), start with the
    full pool, ``NUMBA_NUM_THREADS``; call ``set_num_threads`` in each of them, or set the
    environment variable ``NUMBA_NUM_THREADS`` before Python starts to cap the whole
    process (and its spawned children).

    Examples
    --------
    >>> import tvnumba
    >>> before = tvnumba.get_num_threads()
    >>> tvnumba.set_num_threads(1)
    >>> tvnumba.get_num_threads()
    1
    >>> tvnumba.set_num_threads(before)
    >>> tvnumba.set_num_threads(0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: n must be between 1 and ... (NUMBA_NUM_THREADS), got 0
    """
    numba.set_num_threads(_check_count(n))
    _explicit.set = True


def get_num_threads() -> int:
    """The number of threads tvnumba's CPU kernels use when called from this thread.

    Returns
    -------
    int
        The calling thread's count (see :func:`set_num_threads`): ``NUMBA_NUM_THREADS``
        unless this thread set another.

    See Also
    --------
    set_num_threads, thread_limit

    Examples
    --------
    >>> import numba
    >>> import tvnumba
    >>> 1 <= tvnumba.get_num_threads() <= numba.config.NUMBA_NUM_THREADS
    True
    """
    return int(numba.get_num_threads())


@contextlib.contextmanager
def thread_limit(n: int) -> Iterator[None]:
    """Use `n` threads in the calling thread inside a ``with`` block, then restore the count.

    Parameters
    ----------
    n : int
        Number of threads, as for :func:`set_num_threads`.

    Raises
    ------
    TypeError, ValueError
        As :func:`set_num_threads`, on entering the block.

    See Also
    --------
    set_num_threads, get_num_threads

    Notes
    -----
    Thread-local like :func:`set_num_threads`: threads started inside the block do not
    inherit the limit.

    Examples
    --------
    >>> import numpy as np
    >>> import tvnumba
    >>> before = tvnumba.get_num_threads()
    >>> with tvnumba.thread_limit(1):
    ...     tvnumba.get_num_threads()
    ...     value = tvnumba.tv(np.arange(16.0).reshape(4, 4))
    1
    >>> tvnumba.get_num_threads() == before
    True
    """
    count = _check_count(n)
    before = numba.get_num_threads()
    was_explicit = getattr(_explicit, "set", False)
    numba.set_num_threads(count)
    _explicit.set = True
    try:
        yield
    finally:
        numba.set_num_threads(before)
        _explicit.set = was_explicit


def _others_running() -> int | None:
    """Runnable threads of other processes (and this one's other threads) now, from
    ``/proc/loadavg`` (Linux); None where it cannot be read."""
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0, running - 1)  # less the thread reading it


def threads_for_load(n: int) -> int:
    """How many of ``n`` threads an iterative solve should use now: no more than the
    CPUs that other runnable threads leave free, and at least one.

    A parallel region ends when its slowest thread does; on a machine whose cores are
    taken, a thread that loses its time slice stalls every region (the iterative
    solvers run hundreds), so fewer threads finish sooner.  Next to two busy processes
    on 2 cores, denoising camera 512² on one thread took 1.4-2.0× less time than on two
    (``benchmarks/RESULTS.md``, "Threads: busy machine").
    """
    if n <= 1 or os.environ.get("TVNUMBA_LOAD_AWARE", "1").strip() == "0":
        return n
    others = _others_running()
    if others is None:
        return n
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or n
    return max(1, min(n, cpus - others))


@contextlib.contextmanager
def for_solve() -> Iterator[None]:
    """The thread count of one iterative solve: :func:`threads_for_load` of this
    thread's count, unless this thread chose its count itself (:func:`set_num_threads`,
    :func:`thread_limit`) or ``TVNUMBA_LOAD_AWARE=0``.  The kernels split their work
    by the pool's size, not by this count, so the result does not depend on it."""
    n = numba.get_num_threads()
    m = n if getattr(_explicit, "set", False) else threads_for_load(n)
    if m >= n:
        yield
        return
    numba.set_num_threads(m)
    try:
        yield
    finally:
        numba.set_num_threads(n)
