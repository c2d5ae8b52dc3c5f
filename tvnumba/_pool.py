"""The process pool of ``tvnumba denoise --jobs N``: workers that never outlive the command.

A worker asks Linux to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and
watches the command's pid from a thread as well: the only check on other POSIX systems,
and the one that also holds where a start method puts a server process between the
command and its workers.  Whatever a killed worker was writing stays a temporary that
the next run clears (:func:`tvnumba.io.clear_stale_temporaries`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: Seconds between two looks at the parent's pid.
WATCH_INTERVAL = 0.5
_PR_SET_PDEATHSIG = 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _watch(parents: tuple[int, ...]) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() not in parents or not all(_alive(p) for p in parents):
            os._exit(1)


def die_with_parent(command_pid: int) -> None:
    """Make this process exit when ``command_pid`` (the command) or its direct parent
    (the same process, or a fork server) dies, by any signal (POSIX; nothing on Windows,
    where ``os.kill`` would terminate the process it probes)."""
    if os.name == "nt":
        return
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog alone
            pass
    parents = tuple({parent, command_pid})
    # The parent may have died before prctl took effect: then nobody would signal us.
    if not all(_alive(p) for p in parents) or os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_watch, args=(parents,), name="tvnumba-parent-watch",
                     daemon=True).start()


def init_worker(command_pid: int, threads: int, explicit: bool) -> None:
    """Pool initializer: die with the command, then use ``threads`` threads.  A count the
    user gave (``--threads``) is kept as it is; the default (CPUs // jobs) is only a
    cap, below which each solve still adapts to the machine's load
    (:func:`tvnumba._threads.for_solve`)."""
    die_with_parent(command_pid)
    set_threads(threads, explicit)


def set_threads(threads: int, explicit: bool) -> None:
    """This process's kernels use ``threads`` threads (see :func:`init_worker`)."""
    import numba

    from ._threads import set_num_threads

    if explicit:
        set_num_threads(threads)
    else:
        numba.set_num_threads(threads)


def run_pool(todo, run_task, *, jobs: int, threads: int, explicit: bool, start_method: str,
             report) -> None:
    """Run ``run_task(task)`` for every task of ``todo`` in ``jobs`` worker processes,
    calling ``report(record)`` in this process as each one finishes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                             initializer=init_worker,
                             initargs=(os.getpid(), threads, explicit)) as pool:
        futures = {pool.submit(run_task, t): t for t in todo}
        try:
            for fut in as_completed(futures):
                t = futures[fut]
                try:
                    rec = fut.result()
                except BrokenProcessPool:
                    rec = dict(input=t["input"], output=t["output"], status="error",
                               error="worker process died (out of memory?)",
                               parameters=t["parameters"])
                report(rec)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
