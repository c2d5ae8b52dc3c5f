"""Numba's threading layer for tvnumba, and the public thread-count controls.

The iterative solvers enter a parallel region two or more times per iteration, so the layer
should not spin long between regions (a spinning thread on a busy machine loses its time slice and
every launch waits for it), must survive ``fork`` (GNU OpenMP aborts a forked child) and must
accept launches from several Python threads.  Unless the user chose otherwise, tvnumba asks
Numba for TBB first and ``workqueue`` second (Numba falls back by itself when TBB cannot be
loaded), and serialises its own kernel launches with a process-wide lock while the layer in use
is ``workqueue``, which aborts on concurrent launches; the lock costs nothing there, since each
launch already uses every thread.  The ``tbb`` wheel's ``libtbb.so.12`` lies in
``<prefix>/lib``, which the loader does not search in a virtual environment, so it is loaded
here by path.  Each iterative solve also uses no more threads than the cores that other
runnable threads leave free (:func:`for_solve`).  The reasons and figures are in the
documentation's "Threads" page.

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
    """Runnable threads of other processes now, from ``/proc/loadavg`` (Linux), less this
    process's pool workers that are still spinning after a parallel region (at most
    the pool's size less one; this process's other threads, e.g. a second solve in a
    thread pool, stay load); None where it cannot be read."""
    running = _loadavg_running()
    if running is None or running <= 1:
        return None if running is None else 0  # only the reader: no scan needed
    own = _own_running()
    # read again after the scan: a worker that stopped spinning meanwhile is not load
    again = _loadavg_running()
    running = min(running, again) if again is not None else running
    spinning = min(max(own - 1, 0), _pool_size() - 1)
    return max(0, running - 1 - spinning)


def _pool_size() -> int:
    """The size of Numba's thread pool (``NUMBA_NUM_THREADS``)."""
    return int(config.NUMBA_NUM_THREADS)


def _loadavg_running() -> int | None:
    """The runnable threads of the whole machine, the caller included (``/proc/loadavg``)."""
    try:
        with open("/proc/loadavg") as fh:
            return int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def _own_running() -> int:
    """This process's runnable threads (state ``R`` in ``/proc/self/task/*/stat``), the
    caller included."""
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    n = 0
    for tid in tasks:
        try:  # "pid (name) S ...": the name has at most 15 bytes, and may hold ")"
            fd = os.open(f"/proc/self/task/{tid}/stat", os.O_RDONLY)
            try:
                stat = os.read(fd, 128)
            finally:
                os.close(fd)
        except OSError:
            continue  # the thread ended
        end = stat.rfind(b")")
        n += stat[end + 2:end + 3] == b"R"
    return n


def threads_for_load(n: int) -> int:
    """How many of ``n`` threads an iterative solve should use now: no more than the
    CPUs that other runnable threads leave free, and at least one.

    A parallel region ends when its slowest thread does; on a machine whose cores are
    taken, a thread that loses its time slice stalls every region (the iterative
    solvers run hundreds), so fewer threads finish sooner.
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
