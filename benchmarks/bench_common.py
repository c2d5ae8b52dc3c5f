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


def oracle_weight(psnr_at, center: float, *, factor: float = 8.0, points: int = 12,
                  **brent_options) -> tuple[float, float]:
    """The weight of best PSNR: ``points`` log-spaced weights from ``center / factor`` to
    ``center * factor``, then bounded Brent in ``log w`` between the best one's neighbours
    (``brent_options``, e.g. ``xatol=0.02`` or ``maxiter=4``).  ``psnr_at(w)`` is called
    once per weight; returns ``(weight, psnr)`` of the best weight evaluated."""
    import math

    import numpy as np
    from scipy.optimize import minimize_scalar

    score = {}

    def neg(t):
        if t not in score:
            score[t] = psnr_at(math.exp(t))
        return -score[t]

    ts = list(np.log(center * np.geomspace(1 / factor, factor, points)))
    vals = [neg(t) for t in ts]
    i = int(np.argmin(vals))
    lo, hi = ts[max(i - 1, 0)], ts[min(i + 1, len(ts) - 1)]
    minimize_scalar(neg, bounds=(lo, hi), method="bounded", options=brent_options)
    t = max(score, key=score.get)
    return math.exp(t), score[t]
