"""pytest-benchmark configuration of the suites ``benchmarks/test_bench_<topic>.py``.

``testpaths = ["tests"]`` keeps them out of the default test run.  Run and render::

    python -m pytest benchmarks --bench-size full --benchmark-json=.benchmarks/full.json
    python benchmarks/render_results.py .benchmarks/full.json > benchmarks/RESULTS.md

``--bench-size small`` (the default; or ``TVNUMBA_BENCH_SIZE=small``) runs every suite on
small inputs in a few minutes on 2 cores; ``full`` gives the RESULTS.md figures.  Select
by topic with ``-m`` (markers below) and by case with ``-k``.

Every group holds tvnumba and its baselines measured in the same run; ``benchlib.record``
describes the ``extra_info`` keys.  The JSON's ``machine_info`` gets the versions, the
Numba threading set-up, the size, the command and the load average at the start and the end.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

try:
    import pytest_benchmark  # noqa: F401
except ImportError:  # pragma: no cover - without the ``bench`` extra: collect nothing
    collect_ignore_glob = ["test_bench_*.py"]

import benchlib  # noqa: E402

MARKERS = {
    "kernels": "TV value and gradient kernels, the compat losses, first-call latency",
    "denoise": "denoise_tv_beta against scikit-image, SciPy, installed peers; weight='auto'",
    "inverse": "deconvolution, inpainting, CT against scikit-image and installed peers",
    "poisson": "photon counts: Poisson TV against Richardson-Lucy and Gaussian TV",
    "dask": "chunked Dask arrays against the in-memory call",
    "threads": "solves next to busy processes; process pools",
    "memory": "peak memory as a multiple of the input's bytes",
    "gpu": "needs a real GPU (skipped otherwise)",
    "peer": "compares with an optional library (skipped when it is not installed)",
    "startup": "first call in a fresh process",
}

PEERS = ("pyproximal", "pylops", "scico", "jax", "cupy", "cucim", "dask", "distributed")


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=benchlib.SIZES,
                     default=os.environ.get(benchlib.SIZE_ENV, "small"),
                     help="input sizes of the benchmark suites: small (quick check, the "
                          "default) or full (the RESULTS.md figures)")


def pytest_configure(config):
    os.environ[benchlib.SIZE_ENV] = config.getoption("--bench-size")
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    config._tvnumba_load_start = _loadavg()


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not on every platform
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def pytest_benchmark_update_machine_info(config, machine_info):
    import numba

    import tvnumba

    core = benchlib.versions_of("numpy", "numba", "scipy", "skimage", "tvnumba")
    machine_info["tvnumba_bench"] = {
        "size": config.getoption("--bench-size"),
        "command": "python -m pytest " + shlex.join(config.invocation_params.args),
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "loadavg_start": getattr(config, "_tvnumba_load_start", None),
        "loadavg_end": _loadavg(),  # machine_info is made when the run is saved
        "versions": {"python": platform.python_version(), **core},
        "peers": benchlib.versions_of(*PEERS),
        "numba_threads": tvnumba.get_num_threads(),
        "numba_threading_layer": _threading_layer(numba),
        "env": {k: os.environ[k] for k in sorted(os.environ)
                if k.startswith(("NUMBA_", "OMP_", "TVNUMBA_", "MKL_", "OPENBLAS_"))},
    }


def _threading_layer(numba) -> str:
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        return "not started"
