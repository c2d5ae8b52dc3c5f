"""What the benchmarks share (a plain module: importing from ``conftest`` would be
ambiguous next to ``tests/conftest.py``)."""

from __future__ import annotations

import statistics
import time

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


def warm_times(fn, repeat: int) -> list[float]:
    """Seconds of ``repeat`` calls of ``fn`` after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def best_of(fn, repeat: int = 5) -> float:
    return min(warm_times(fn, repeat))


def median_of(fn, repeat: int = 5) -> float:
    return statistics.median(warm_times(fn, repeat))
