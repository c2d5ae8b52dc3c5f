"""Dask: ``tvnumba`` on chunked Dask arrays against the same call on the in-memory array.

* ``tv_value_and_grad``, exact on Dask arrays: float32 uniform [0, 1) data (made by
  ``dask.array.random.default_rng(0)``), an image (small 1024² in chunks of 256, full 4096²
  in chunks of 1024) and a volume (small 64³ / chunks 32, full 256³ / chunks 128);
* ``denoise_tv_beta`` chunk by chunk with the default halo (``tvnumba.dask.default_depth``):
  camera tiled to the image's size plus noise σ = 0.1, β = 1, weight 0.1, and a
  ``binary_blobs`` volume of the volume's size plus noise, β = 2, weight 0.1; default eps;
* the seam error at eps = 1e-6 (so that the solvers' tolerance neither hides nor fakes a
  seam): camera (small 256² / chunks 64, full 1024² / chunks 256) plus noise σ = 0.1,
  β = 1 at weight 0.05, β = 2 at weight 0.3 (default halo); and β = 0.5 at weight 0.05 at the
  default eps (no ``depth=``: one task running the in-memory solver, on one thread here).

Entries: ``in memory`` (baseline: the NumPy array, tvnumba's default threads); ``dask
threads`` (the threaded scheduler, 2 workers, each chunk's kernels on one thread:
``tvnumba.thread_limit(1)``); ``dask LocalCluster 2×1`` (``dask.distributed``, 2 worker
processes of one thread, ``tvnumba.set_num_threads(1)`` in each; the data persisted on the
workers before timing, the results gathered to this process).  Quality columns: the
largest difference to the in-memory result (``max abs Δ``; for the value its relative
difference),
the halo ``depth``, throughput in Mpixel/s.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings

import numpy as np
import pytest
from benchlib import camera, measure, noisy, pick, record

import tvnumba

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
from tvnumba.dask import default_depth  # noqa: E402 - needs dask

pytestmark = pytest.mark.dask

_CACHE: dict = {}
RUNS = ["in_memory", "threads", "cluster"]
LABELS = {"in_memory": "in memory", "threads": "dask threads",
          "cluster": "dask LocalCluster 2×1"}
ROLES = {"in_memory": "baseline", "threads": "tvnumba", "cluster": "other"}


@pytest.fixture(scope="module")
def client():
    """A 2-worker, 1-thread-each ``LocalCluster`` and its client (module-wide)."""
    distributed = pytest.importorskip("distributed")
    with quiet():
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        cl = distributed.Client(cluster)
        cl.run(lambda: __import__("tvnumba").set_num_threads(1))
    yield cl
    with quiet():
        cl.close()
        cluster.close()


@contextlib.contextmanager
def quiet():
    """``dask.distributed`` warns about ports, graph sizes and closing; not about tvnumba."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def threads_scheduler():
    return dask.config.set(scheduler="threads", num_workers=min(2, len(os.sched_getaffinity(0))))


def data(name):
    """(lazy array, in-memory array, chunk) for "image" / "volume" (uniform random)."""
    if name not in _CACHE:
        shape, chunk = {"image": (pick((1024,) * 2, (4096,) * 2), pick(256, 1024)),
                        "volume": (pick((64,) * 3, (256,) * 3), pick(32, 128))}[name]
        lazy = da.random.default_rng(0).random(shape, dtype=np.float32, chunks=chunk)
        _CACHE[name] = lazy, lazy.compute(scheduler="threads"), chunk
    return _CACHE[name]


def _run_entry(benchmark, run, client, in_memory, lazy_of, compare):
    """Time one entry: ``in_memory()``; ``lazy_of(x)`` computed on the threads; or on the
    cluster (data persisted there first).  ``compare(result)`` -> quality columns."""
    if run == "in_memory":
        out = measure(benchmark, in_memory)
    elif run == "threads":
        lazy = lazy_of(None)
        with threads_scheduler(), tvnumba.thread_limit(1):
            out = measure(benchmark, lambda: dask.compute(*lazy))
    else:
        with quiet():
            lazy = lazy_of(client)
            out = measure(benchmark, lambda: client.compute(lazy, sync=True))
    return compare(out)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", ["image", "volume"])
def test_tv_value_and_grad(benchmark, name, run, request):
    lazy_in, x, chunk = data(name)
    client = request.getfixturevalue("client") if run == "cluster" else None
    shape = "×".join(map(str, x.shape))
    benchmark.group = f"dask tv_value_and_grad: {shape} float32, chunks {chunk}"
    v0, g0 = tvnumba.tv_value_and_grad(x)

    def lazy_of(cl):
        if cl is None:
            return tvnumba.tv_value_and_grad(da.from_array(x, chunks=chunk))
        y = cl.persist(lazy_in)
        _ = cl.compute(y.sum(), sync=True)  # wait until it is on the workers
        return tvnumba.tv_value_and_grad(y)

    def compare(out):
        v, g = out
        return {"max abs Δ": float(np.abs(np.asarray(g) - g0).max()),
                "value rel. Δ": abs(float(v) - v0) / abs(v0)}

    q = _run_entry(benchmark, run, client, lambda: tvnumba.tv_value_and_grad(x), lazy_of,
                   compare)
    mpix = x.size / 1e6 / benchmark.stats.stats.median if getattr(benchmark, "stats", None) \
        else None
    record(benchmark, LABELS[run], role=ROLES[run], **q, **{"Mpixel/s": mpix})


def denoise_case(name):
    """(lazy noisy input, in-memory input, chunk, β, weight) made once."""
    key = ("denoise", name)
    if key not in _CACHE:
        n, chunk = {"image": (pick(1024, 4096), pick(256, 1024)),
                    "volume": (pick(64, 256), pick(32, 128))}[name]
        rng = da.random.default_rng(0)
        if name == "image":
            cam = camera(512).astype(np.float32)
            tiled = da.tile(da.from_array(cam, chunks=256), (n // 512 + 1,) * 2)[:n, :n]
            clean = tiled.rechunk(chunk)
            beta = 1.0
        else:
            from skimage import data as skdata

            vol = skdata.binary_blobs(length=n, n_dim=3, volume_fraction=0.3,
                                      rng=1).astype(np.float32)
            clean = da.from_array(vol, chunks=chunk)
            beta = 2.0
        lazy = clean + np.float32(0.1) * rng.standard_normal(clean.shape, dtype=np.float32,
                                                             chunks=chunk)
        _CACHE[key] = lazy, lazy.compute(scheduler="threads"), chunk, beta, 0.1
    return _CACHE[key]


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("name", ["image", "volume"])
def test_denoise(benchmark, name, run, request):
    lazy_in, x, chunk, beta, w = denoise_case(name)
    client = request.getfixturevalue("client") if run == "cluster" else None
    depth = default_depth(w, beta)
    shape = "×".join(map(str, x.shape))
    benchmark.group = (f"dask denoise_tv_beta: {'camera tiled' if name == 'image' else 'blobs'}"
                       f" {shape} float32 + noise, β={beta:g} weight {w:g}, chunks {chunk}")
    key = ("ref", name)
    if key not in _CACHE:
        _CACHE[key] = tvnumba.denoise_tv_beta(x, w, beta)
    ref = _CACHE[key]

    def lazy_of(cl):
        if cl is None:
            return (tvnumba.denoise_tv_beta(da.from_array(x, chunks=chunk), w, beta),)
        y = cl.persist(lazy_in)
        _ = cl.compute(y.sum(), sync=True)
        return (tvnumba.denoise_tv_beta(y, w, beta),)

    def compare(out):
        u = out[0] if isinstance(out, (tuple, list)) else out
        return {"max abs Δ": float(np.abs(np.asarray(u) - ref).max()), "depth": depth}

    q = _run_entry(benchmark, run, client, lambda: tvnumba.denoise_tv_beta(x, w, beta),
                   lazy_of, compare)
    if run == "in_memory":
        q["depth"] = None
    mpix = x.size / 1e6 / benchmark.stats.stats.median if getattr(benchmark, "stats", None) \
        else None
    record(benchmark, LABELS[run], role=ROLES[run], **q, **{"Mpixel/s": mpix})


SEAMS = [(1.0, 0.05), (2.0, 0.3), (0.5, 0.05)]


@pytest.mark.parametrize("run", ["in_memory", "threads"])
@pytest.mark.parametrize("beta,weight", SEAMS, ids=[f"beta{b:g}-w{w:g}" for b, w in SEAMS])
def test_seams(benchmark, beta, weight, run):
    n, chunk = pick(256, 1024), pick(64, 256)
    f = noisy(camera(n), 0.1)
    depth = default_depth(weight, beta) if beta >= 1 else None
    kw = {"eps": 1e-6 if beta >= 1 else 1e-3}
    benchmark.group = (f"dask seam error at eps={'1e-6' if beta >= 1 else '1e-3'}: camera {n}² "
                       f"float64 + noise, "
                       f"β={beta:g} weight {weight:g}, chunks {chunk}")
    key = ("seam-ref", beta, weight)
    if key not in _CACHE:
        _CACHE[key] = tvnumba.denoise_tv_beta(f, weight, beta, **kw)
    ref = _CACHE[key]
    small = f[:64, :64]
    if run == "in_memory":
        u = measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, weight, beta, **kw),
                    warm=lambda: tvnumba.denoise_tv_beta(small, weight, beta, **kw),
                    rounds=pick(3, 1))
        record(benchmark, LABELS[run], role="baseline", **{"max abs Δ": 0.0})
        return
    X = da.from_array(f, chunks=chunk)
    with threads_scheduler(), tvnumba.thread_limit(1):
        u = measure(benchmark,
                    lambda: tvnumba.denoise_tv_beta(X, weight, beta, **kw).compute(),
                    warm=lambda: tvnumba.denoise_tv_beta(
                        da.from_array(small, chunks=32), weight, beta, depth=8, **kw).compute(),
                    rounds=pick(3, 1))
    err = np.abs(u - ref)
    record(benchmark, LABELS[run], **{"max abs Δ": float(err.max()),
                                      "99.9 % abs Δ": float(np.quantile(err, 0.999))},
           depth=depth if depth is not None else "one task")


# --------------------------------------------------------------------------- command line
def _volume_store(tmp_root):
    """A Zarr volume (small 64×256×256, full 256×1024×1024 float32 = 1 GiB) in chunks of
    64×256×256: a noisy ``binary_blobs`` block tiled, written once."""
    zarr = pytest.importorskip("zarr", minversion="3")
    if "volume_store" not in _CACHE:
        from benchlib import blobs

        shape = pick((64, 256, 256), (256, 1024, 1024))
        block, _ = blobs(64, 0.3, seed=0)
        reps = tuple(n // 64 for n in shape)
        x = da.tile(da.from_array(block.astype(np.float32), chunks=64), reps)
        path = os.path.join(tmp_root, "volume.zarr")
        with threads_scheduler():
            x.rechunk((64, 256, 256)).to_zarr(path, overwrite=True)
        _CACHE["volume_store"] = path, shape, zarr
    return _CACHE["volume_store"]


def _peak_rss_of_children(proc, period=0.05):
    """Run until ``proc`` ends; the largest RSS of each descendant process (bytes)."""
    import psutil

    peaks: dict = {}
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            for child in parent.children(recursive=True):
                try:
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                peaks[child.pid] = max(peaks.get(child.pid, 0), rss)
        except psutil.Error:
            pass
        time.sleep(period)
    return peaks


@pytest.mark.parametrize("run", ["copy", "cli"])
def test_cli_volume(benchmark, run, tmp_path_factory):
    """``tvnumba denoise VOLUME.zarr`` on a local cluster of 2 workers with a memory limit
    below the volume's size (full), against a Dask copy of the same store (the I/O floor)."""
    import subprocess
    import sys

    root = str(tmp_path_factory.getbasetemp())
    path, shape, zarr = _volume_store(root)
    limit = 700 * 2**20
    nbytes = int(np.prod(shape)) * 4
    benchmark.group = (f"command line: tvnumba denoise on a Zarr volume {'×'.join(map(str, shape))}"
                       f" float32 ({nbytes / 2**30:.2g} GiB), 2 workers × 1 thread, "
                       f"--memory-limit {limit >> 20} MiB each")
    out = os.path.join(root, "out")
    if run == "copy":
        def copy():
            with threads_scheduler():
                da.from_zarr(path).to_zarr(os.path.join(root, "copy.zarr"), overwrite=True)

        measure(benchmark, copy, rounds=pick(3, 1))
        record(benchmark, "Dask copy of the store (threads)", role="baseline")
        return
    cmd = [sys.executable, "-m", "tvnumba", "denoise", path, "-o", out, "--overwrite",
           "--workers", "2", "--threads", "1", "--memory-limit", f"{limit >> 20}MiB",
           "--depth", "16", "--weight", "0.1", "--json"]
    env = dict(os.environ, TQDM_DISABLE="1")
    state = {}

    def run_cli():
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env=env) as proc:
            peaks = _peak_rss_of_children(proc)
            text = proc.stdout.read().decode()
        assert proc.returncode == 0, text
        state.update(peaks=peaks, record=next(
            line for line in text.splitlines() if '"chunks_total"' in line))
        return state

    measure(benchmark, run_cli, rounds=1)
    import json

    rec = json.loads(state["record"])
    workers = sorted(state["peaks"].values())[-2:]  # the two largest: the workers
    record(benchmark, "tvnumba denoise (command line)",
           **{"peak RSS per worker MiB": max(workers) / 2**20,
              "volume / worker limit": nbytes / limit,
              "chunks": rec.get("chunks_total")})
