"""Threads and processes: tvnumba's threading-layer choice and thread-count controls.

Every scenario that could abort or hang the interpreter (fork after use, concurrent threads,
another threading layer) runs in a child Python with a timeout, so that a failure is a failed
test, never a dead pytest.  Speed is never asserted here (``benchmarks/test_bench_threads.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numba
import numpy as np
import pytest

import tvnumba

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 180  # generous: a loaded CI machine may have to compile the kernels first

# Shared by the child scripts: inputs, and results that must equal the single-threaded ones.
PRELUDE = """
import json, os, sys
import numpy as np
from numpy.testing import assert_allclose
import numba
import tvnumba

def image(seed, shape=(48, 40)):
    return np.random.default_rng(seed).random(shape)

def work(seed):
    u = image(seed)
    value, grad = tvnumba.tv_value_and_grad(u, beta=1.5, smoothing=1e-3)
    return tvnumba.tv(u), value, grad, tvnumba.denoise_tv_beta(u, 0.1, 1.0)
"""


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _run(tmp_path, body: str, head: str = "", **env: str) -> str:
    """Run head + PRELUDE + body as a script in a child Python; its stdout, or the test
    fails."""
    script = tmp_path / "child.py"
    script.write_text(head + PRELUDE + textwrap.dedent(body))
    try:
        done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=_child_env(**env),
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child hung for {TIMEOUT} s; stderr:\n{e.stderr}")
    assert done.returncode == 0, f"child exited {done.returncode}; stderr:\n{done.stderr}"
    return done.stdout


POOL = """
def check(seed):
    got = work(seed)
    with tvnumba.thread_limit(1):
        want = work(seed)
    for g, w in zip(got, want):
        assert_allclose(g, w, rtol=1e-12, atol=0)
    return numba.threading_layer()

if __name__ == "__main__":
    import multiprocessing as mp
    check(0)  # the parent uses tvnumba (and starts Numba's thread pool) before the pool
    with mp.get_context("{method}").Pool(2) as pool:
        layers = pool.map(check, range(1, 5))
    check(5)  # and the parent still works afterwards
    print("OK", layers[0])
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_process_pool_after_use(tmp_path, method):
    if method not in __import__("multiprocessing").get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    out = _run(tmp_path, POOL.replace("{method}", method))
    assert out.startswith("OK")


def test_concurrent_threads(tmp_path):
    out = _run(tmp_path, """
    from concurrent.futures import ThreadPoolExecutor

    seeds = list(range(8))
    with tvnumba.thread_limit(1):
        want = [work(s) for s in seeds]

    def many(seed):
        for _ in range(5):
            u = image(seed)
            value, grad = tvnumba.tv_value_and_grad(u, beta=1.5, smoothing=1e-3)
            assert_allclose(value, want[seed][1], rtol=1e-12, atol=0)
            assert_allclose(grad, want[seed][2], rtol=1e-12, atol=0)
        return work(seed)

    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(many, seeds))
    for g, w in zip(got, want):
        for a, b in zip(g, w):
            assert_allclose(a, b, rtol=1e-12, atol=0)
    print("OK", numba.threading_layer())
    """)
    assert out.startswith("OK")


def test_default_layer_is_fork_and_thread_safe(tmp_path):
    out = _run(tmp_path, """
    tvnumba.tv(image(0))
    print(numba.threading_layer())
    """)
    assert out.split() == ["tbb"] or out.split() == ["workqueue"]


@pytest.mark.parametrize("setting", ["env", "config"])
def test_user_threading_layer_wins(tmp_path, setting):
    # omp is the layer tvnumba never picks by itself.
    if setting == "env":
        env = dict(NUMBA_THREADING_LAYER="omp", NUMBA_NUM_THREADS="1")
        head = ""
    else:  # numba.config changed before tvnumba is imported
        env = dict(NUMBA_NUM_THREADS="1")
        head = "import numba\nnumba.config.THREADING_LAYER = 'omp'\n"
    out = _run(tmp_path, """
    try:
        tvnumba.tv(image(0))
    except ValueError as e:  # no OpenMP runtime on this platform
        print("SKIP", e)
        sys.exit(0)
    print(numba.threading_layer(), tvnumba.get_num_threads())
    """, head, **env)
    if out.startswith("SKIP"):
        pytest.skip(out)
    assert out.split() == ["omp", "1"]


def test_user_priority_wins(tmp_path):
    out = _run(tmp_path, """
    tvnumba.tv(image(0))
    print(numba.threading_layer(), numba.config.THREADING_LAYER_PRIORITY)
    """, NUMBA_THREADING_LAYER_PRIORITY="workqueue omp tbb")
    assert out.split()[0] == "workqueue"


@pytest.mark.parametrize("bad", [1.5, "2", None, True, np.float64(2.0)])
def test_set_num_threads_type(bad):
    with pytest.raises(TypeError, match=r"^n must be an integer, got ") as info:
        tvnumba.set_num_threads(bad)
    assert str(info.value).endswith(repr(bad))


@pytest.mark.parametrize("bad", [0, -1, numba.config.NUMBA_NUM_THREADS + 1])
def test_set_num_threads_range(bad):
    with pytest.raises(ValueError, match=rf"^n must be between 1 and .*, got {bad}$"):
        tvnumba.set_num_threads(bad)
    with pytest.raises(ValueError, match="^n must be"), tvnumba.thread_limit(bad):
        pass


def test_set_num_threads_round_trip():
    before = tvnumba.get_num_threads()
    try:
        tvnumba.set_num_threads(np.int64(1))
        assert tvnumba.get_num_threads() == 1 == numba.get_num_threads()
        tvnumba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        assert tvnumba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    finally:
        tvnumba.set_num_threads(before)


def test_thread_limit_restores_and_is_thread_local(rng):
    before = tvnumba.get_num_threads()
    u = rng.random((32, 30))
    want = tvnumba.tv_value_and_grad(u, beta=0.8, smoothing=1e-2)
    seen = []
    with pytest.raises(RuntimeError), tvnumba.thread_limit(1):
        assert tvnumba.get_num_threads() == 1
        got = tvnumba.tv_value_and_grad(u, beta=0.8, smoothing=1e-2)
        other = threading.Thread(target=lambda: seen.append(tvnumba.get_num_threads()))
        other.start()
        other.join()
        raise RuntimeError  # the count comes back on the way out of an error too
    assert tvnumba.get_num_threads() == before
    assert seen == [numba.config.NUMBA_NUM_THREADS]  # a new thread has the full pool
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=0)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=0)


def test_public_api():
    for name in ("set_num_threads", "get_num_threads", "thread_limit"):
        assert name in tvnumba.__all__
        assert getattr(tvnumba, name).__doc__


# --------------------------------------------------------------------------- load-aware
@pytest.mark.parametrize("others,cpus,n,expected", [
    (0, 2, 2, 2), (1, 2, 2, 1), (2, 2, 2, 1), (5, 2, 2, 1), (3, 8, 8, 5), (0, 8, 4, 4),
    (None, 2, 2, 2), (4, 2, 1, 1),
])
def test_threads_for_load(monkeypatch, others, cpus, n, expected):
    from tvnumba import _threads

    monkeypatch.delenv("TVNUMBA_LOAD_AWARE", raising=False)
    monkeypatch.setattr(_threads, "_others_running", lambda: others)
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: set(range(cpus)))
    assert _threads.threads_for_load(n) == expected
    monkeypatch.setenv("TVNUMBA_LOAD_AWARE", "0")
    assert _threads.threads_for_load(n) == n


def test_others_running_reads_proc_loadavg():
    from tvnumba import _threads

    got = _threads._others_running()
    if not os.path.exists("/proc/loadavg"):
        assert got is None
    else:
        assert isinstance(got, int) and got >= 0
        assert _threads._own_running() >= 1  # the caller runs


@pytest.mark.parametrize("loads,own,pool,expected", [
    ((1, 1), 5, 2, 0),  # only the reader: no scan
    ((2, 2), 2, 2, 0),  # the pool's worker still spinning after a region
    ((3, 3), 3, 4, 0),  # two of them
    ((3, 3), 3, 2, 1),  # a pool of 2 has one worker: the other runnable thread is load
    ((3, 3), 1, 2, 2),  # two threads of other processes
    ((4, 2), 1, 2, 1),  # a worker stopped spinning during the scan: the lower reading
    ((3, None), 0, 2, 2),  # the caller always counts as one of its own
    ((None, None), 1, 2, None),
])
def test_others_running_leaves_out_the_spinning_pool(monkeypatch, loads, own, pool, expected):
    """The load is what other processes and this process's other threads run: the pool's
    workers, which spin for a moment after each parallel region, are taken off."""
    from tvnumba import _threads

    readings = iter(loads)
    monkeypatch.setattr(_threads, "_loadavg_running", lambda: next(readings))
    monkeypatch.setattr(_threads, "_own_running", lambda: own)
    monkeypatch.setattr(_threads, "_pool_size", lambda: pool)
    assert _threads._others_running() == expected


def test_a_solve_right_after_a_parallel_kernel_keeps_its_threads(monkeypatch):
    """The pool's workers, spinning after the kernels that prepare a problem, do not make
    the solve that follows give up threads."""
    from tvnumba import _threads

    if numba.config.NUMBA_NUM_THREADS < 2 or not os.path.exists("/proc/self/task"):
        pytest.skip("needs a pool of 2 threads and /proc")
    monkeypatch.delenv("TVNUMBA_LOAD_AWARE", raising=False)
    # a machine that runs this process's threads alone, as /proc/loadavg would count them
    monkeypatch.setattr(_threads, "_loadavg_running", _threads._own_running)
    seen = []

    def run():
        f = np.random.default_rng(0).random((64, 64))
        mask = np.random.default_rng(1).random(f.shape) < 0.5
        tvnumba.inpaint_tv_beta(f, mask, 0.01, max_num_iter=5,
                                callback=lambda *_: seen.append(numba.get_num_threads()))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen and set(seen) == {numba.config.NUMBA_NUM_THREADS}


def test_for_solve_lowers_the_count_for_the_solve_only(monkeypatch):
    from tvnumba import _threads

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs a pool of 2 threads")
    monkeypatch.delenv("TVNUMBA_LOAD_AWARE", raising=False)
    monkeypatch.setattr(_threads, "_others_running", lambda: 10**6)  # a saturated machine
    seen = []

    def record(*_):
        seen.append(numba.get_num_threads())

    def run():
        before = numba.get_num_threads()
        f = np.random.default_rng(0).random((24, 24))
        tvnumba.denoise_tv_beta(f, 0.1, callback=record)
        return before, numba.get_num_threads()

    box = []
    # in a fresh thread: the main thread may have chosen its count already (explicit)
    worker = threading.Thread(target=lambda: box.append(run()))
    worker.start()
    worker.join()
    before, after = box[0]
    assert set(seen) == {1} and after == before == numba.config.NUMBA_NUM_THREADS

    seen.clear()

    def explicit():
        with tvnumba.thread_limit(2):  # the user's own count: left alone
            tvnumba.denoise_tv_beta(np.random.default_rng(0).random((24, 24)), 0.1,
                                    callback=record)

    worker = threading.Thread(target=explicit)
    worker.start()
    worker.join()
    assert set(seen) == {2}
