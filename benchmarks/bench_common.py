"""What ``conftest.py`` and ``test_bench_*.py`` share (a plain module: importing from
``conftest`` would be ambiguous next to ``tests/conftest.py``)."""

from __future__ import annotations

TV_BETAS = (1.0, 1.7, 2.0)
DENOISE_BETA_WEIGHTS = {0.5: 0.04, 1.0: 0.1, 1.5: 0.25, 2.0: 0.5}


def record(benchmark, **info):
    """``benchmark.extra_info.update(info)``; ``GB/s`` from ``bytes_moved`` and the
    median time when the benchmark actually ran (not under ``--benchmark-disable``)."""
    benchmark.extra_info.update(info)
    stats = getattr(benchmark, "stats", None)
    nbytes = info.get("bytes_moved")
    if stats is not None and nbytes:
        median = stats.stats.median
        benchmark.extra_info["GB/s"] = round(nbytes / median / 1e9, 2)
