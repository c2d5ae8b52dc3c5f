"""Threads: ``denoise_tv_beta`` next to busy processes, on one thread and on the default
threads; the same solves in process pools.

Busy machine: camera (small 256², full 512²) plus noise σ = 0.1 (seed 0), float32, β = 0.5
(majorize-minimize, weight 0.04), β = 1 (Chambolle-Pock, 0.1), β = 1.5 (L-BFGS, 0.25), default
eps.  Columns: the default thread count with no busy process of this suite (``idle``, the
baseline; the machine line gives the load from outside), under ``tvnumba.thread_limit(1)``
(``1 thread``), and next to one (``1 busy``) or as many as the usable cores (``2 busy`` on 2
cores) busy processes (``while True: pass``, started for the entry and killed after it).
A last row does the same for scikit-image's ``denoise_tv_chambolle`` (β = 1; NumPy, one
thread).  tvnumba reads the load (``/proc/loadavg``) before each iterative solve and uses no
more threads than the cores left free.

Process pools: 8 such images (β = 1) denoised one after the other in this process
(baseline) and by ``concurrent.futures.ProcessPoolExecutor`` with 2 workers started by
``fork`` after tvnumba's threads ran in this process, and by ``spawn``; the pools are
started and warmed (kernels loaded) before timing.  ``max abs Δ``: the largest difference to
the serial results (the solvers' results do not depend on the thread count).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
from benchlib import camera, denoise_job, measure, noisy, pick, record
from skimage.restoration import denoise_tv_chambolle

import tvnumba

pytestmark = pytest.mark.threads

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
WEIGHTS = {0.5: 0.04, 1.0: 0.1, 1.5: 0.25}


@contextlib.contextmanager
def busy(n: int):
    """``n`` processes spinning on a core each, for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(1.0)  # let the load average see them
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def image():
    return noisy(camera(pick(256, 512)), 0.1, dtype=np.float32)


LOADS = {"idle": (0, False), "idle-1thread": (0, True), "busy1": (1, False),
         f"busy{CORES}": (CORES, False), f"busy{CORES}-1thread": (CORES, True)}


def load_label(load):
    n, one = LOADS[load]
    return ("idle" if n == 0 else f"{n} busy") + (", 1 thread" if one else "")


def table(f):
    return (f"threads: denoise_tv_beta on camera {f.shape[0]}² float32 next to busy processes, "
            f"{CORES} usable cores")


@pytest.mark.parametrize("load", list(LOADS))
@pytest.mark.parametrize("beta", list(WEIGHTS), ids=lambda b: f"beta{b:g}")
def test_busy_machine(benchmark, beta, load):
    f = image()
    w = WEIGHTS[beta]
    n, one = LOADS[load]
    benchmark.group = (f"threads: denoise_tv_beta β={beta:g} weight {w:g}, camera "
                       f"{f.shape[0]}² float32, {CORES} usable cores")
    limit = tvnumba.thread_limit(1) if one else contextlib.nullcontext()
    with busy(n), limit:
        measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, w, beta))
    record(benchmark, load_label(load), role="baseline" if load == "idle" else "tvnumba",
           table=table(f), row=f"tvnumba β={beta:g} weight {w:g}")


@pytest.mark.parametrize("load", ["idle", f"busy{CORES}"])
def test_busy_machine_skimage(benchmark, load):
    f = image()
    n = LOADS[load][0]
    benchmark.group = f"threads: skimage denoise_tv_chambolle weight 0.1, camera {f.shape[0]}²"
    with busy(n):
        measure(benchmark, lambda: denoise_tv_chambolle(f, weight=0.1))
    record(benchmark, load_label(load), role="baseline" if n == 0 else "tvnumba",
           table=table(f), row="skimage denoise_tv_chambolle weight 0.1 (β=1)")


@pytest.fixture(scope="module", params=["fork", "spawn"])
def pool(request):
    """A warmed 2-worker process pool of the given start method."""
    method = request.param
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    tvnumba.denoise_tv_beta(image()[:64, :64], 0.1)  # this process's threads run first
    with warnings.catch_warnings():
        # Python >= 3.12 warns that fork() in a process with threads may deadlock; the
        # library is built to survive it, which is what this measures
        warnings.simplefilter("ignore", DeprecationWarning)
        ex = concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context(method))
        list(ex.map(denoise_job, [(image()[:64, :64], 0.1, 1.0)] * 4))
    yield method, ex
    ex.shutdown()


def images8():
    f = image()
    return [np.roll(f, 17 * k, axis=k % 2).copy() for k in range(8)]


def test_pool_serial(benchmark):
    jobs = [(g, 0.1, 1.0) for g in images8()]
    benchmark.group = f"process pools: 8 × denoise_tv_beta β=1, {jobs[0][0].shape[0]}² float32"
    measure(benchmark, lambda: [denoise_job(j) for j in jobs])
    record(benchmark, "one after the other, this process", role="baseline",
           **{"max abs Δ": 0.0})


def test_pool(benchmark, pool):
    method, ex = pool
    jobs = [(g, 0.1, 1.0) for g in images8()]
    benchmark.group = f"process pools: 8 × denoise_tv_beta β=1, {jobs[0][0].shape[0]}² float32"
    out = measure(benchmark, lambda: list(ex.map(denoise_job, jobs)))
    ref = [denoise_job(j) for j in jobs]
    err = max(float(np.abs(a - b).max()) for a, b in zip(out, ref))
    record(benchmark, f"ProcessPoolExecutor(2), {method}", **{"max abs Δ": err})
