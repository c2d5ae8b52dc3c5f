"""Benchmark of the CPU β-TV kernels against baselines measured in the same run.

Baselines
---------
* ``numpy``: a vectorised NumPy implementation of the same formula (same
  dtype as the input, whole-array operations, as one would write it by hand).
* ``copy``: ``np.copyto`` of the same bytes the kernel must move: ``u`` for
  ``tv`` (read), ``u`` -> ``grad`` for ``tv_value_and_grad`` (read + write).
  It is the memory floor: no kernel that reads ``u`` once can beat it.

Run (writes a markdown table to stdout)::

    python benchmarks/bench_tv.py            # full run: 2048² f32/f64, 256³ f32
    python benchmarks/bench_tv.py --quick    # smaller shapes, fewer repeats

Times are the best of ``--repeat`` warm calls (compilation excluded); the
startup section measures compilation and the first call separately.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np


def numpy_tv_value_and_grad(u, beta, isotropic=True, want_grad=True):
    """Vectorised NumPy β-TV (unit spacing, no smoothing), input dtype kept."""
    diffs = []
    for ax in range(u.ndim):
        d = np.zeros_like(u)
        sl_hi = [slice(None)] * u.ndim
        sl_lo = [slice(None)] * u.ndim
        sl_hi[ax] = slice(1, None)
        sl_lo[ax] = slice(None, -1)
        d[tuple(sl_lo)] = u[tuple(sl_hi)] - u[tuple(sl_lo)]
        diffs.append(d)

    def value_weight(m):
        pos = m > 0
        t = np.where(pos, np.where(pos, m, 1) ** (beta / 2 - 1), 0).astype(u.dtype)
        return m * t, beta * t

    if isotropic:
        m = sum(d * d for d in diffs)
        val, w = value_weight(m)
        value = float(val.sum(dtype=np.float64))
        fluxes = [w * d for d in diffs]
    else:
        value = 0.0
        fluxes = []
        for d in diffs:
            val, w = value_weight(d * d)
            value += float(val.sum(dtype=np.float64))
            fluxes.append(w * d)
    if not want_grad:
        return value, None
    g = np.zeros_like(u)
    for ax, f in enumerate(fluxes):
        g -= f
        sl_hi = [slice(None)] * u.ndim
        sl_lo = [slice(None)] * u.ndim
        sl_hi[ax] = slice(1, None)
        sl_lo[ax] = slice(None, -1)
        g[tuple(sl_hi)] += f[tuple(sl_lo)]
    return value, g


def best_time(fn, repeat):
    fn()  # warm (compiles on first use)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_kernels(shapes, betas, repeat, numpy_repeat):
    import tvnumba

    rows = []
    rng = np.random.default_rng(0)
    for shape, dtype in shapes:
        u = rng.random(shape).astype(dtype)
        grad = np.empty_like(u)
        t_copy_r = best_time(lambda: np.copyto(grad, u), repeat)  # read u + write: 2 passes
        for beta in betas:
            for iso in (True, False):
                for job in ("tv", "tv_value_and_grad"):
                    if job == "tv":
                        ours = lambda: tvnumba.tv(u, beta, isotropic=iso)  # noqa: E731
                        ref = lambda: numpy_tv_value_and_grad(u, beta, iso, False)  # noqa: E731
                        floor = t_copy_r / 2  # reading u once ~ half a copy
                    else:
                        ours = lambda: tvnumba.tv_value_and_grad(u, beta, isotropic=iso, out=grad)  # noqa: E731
                        ref = lambda: numpy_tv_value_and_grad(u, beta, iso, True)  # noqa: E731
                        floor = t_copy_r
                    t_ours = best_time(ours, repeat)
                    t_np = best_time(ref, numpy_repeat)
                    rows.append(dict(
                        shape="×".join(map(str, shape)), dtype=np.dtype(dtype).name,
                        beta=beta, iso="iso" if iso else "aniso", job=job,
                        ms=1e3 * t_ours, np_ms=1e3 * t_np, floor_ms=1e3 * floor,
                        speedup=t_np / t_ours, floor_ratio=t_ours / floor,
                        gbs=(u.nbytes * (2 if job != "tv" else 1)) / t_ours / 1e9,
                    ))
                    r = rows[-1]
                    print(f"  {r['shape']} {r['dtype']} β={beta} {r['iso']} {job}: "
                          f"{r['ms']:.2f} ms, numpy {r['np_ms']:.1f} ms "
                          f"({r['speedup']:.1f}×), {r['floor_ratio']:.2f}× floor",
                          file=sys.stderr, flush=True)
    return rows


_STARTUP = """
import time, numpy as np
t0 = time.perf_counter()
import tvnumba
t1 = time.perf_counter()
u = np.random.default_rng(0).random((512, 512)).astype(np.float32)
tvnumba.tv_value_and_grad(u, 1.0)
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def bench_startup():
    """Import time and first tv_value_and_grad call, cold and warm cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold cache (compiles)", "warm cache"):
            res = subprocess.run([sys.executable, "-c", _STARTUP], env=env, check=True,
                                 capture_output=True, text=True)
            imp, first = map(float, res.stdout.split())
            out[label] = (imp, first)
    return out


def machine():
    import numba

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, numba {numba.__version__} "
            f"({numba.get_num_threads()} threads, layer {numba.config.THREADING_LAYER}), "
            f"numpy {np.__version__}, Python {platform.python_version()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--no-startup", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        shapes = [((512, 512), np.float32), ((64, 64, 64), np.float32)]
        repeat, numpy_repeat = args.repeat or 5, 2
    else:
        shapes = [((2048, 2048), np.float32), ((2048, 2048), np.float64),
                  ((256, 256, 256), np.float32)]
        repeat, numpy_repeat = args.repeat or 10, 3
    betas = (1.0, 2.0, 0.5, 1.7)

    print(f"Machine: {machine()}\n")
    print(f"Command: `python benchmarks/bench_tv.py{' --quick' if args.quick else ''}`\n")
    if not args.no_startup:
        st = bench_startup()
        print("| startup (fresh process, 512² float32 tv_value_and_grad) | import s | first call s |")
        print("|---|---|---|")
        for label, (imp, first) in st.items():
            print(f"| {label} | {imp:.2f} | {first:.2f} |")
        print()
    rows = bench_kernels(shapes, betas, repeat, numpy_repeat)
    print("| shape | dtype | β | norm | job | tvnumba ms | NumPy ms | speed-up vs NumPy "
          "| copy floor ms | × floor | GB/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['dtype']} | {r['beta']:g} | {r['iso']} | {r['job']} "
              f"| {r['ms']:.2f} | {r['np_ms']:.1f} | {r['speedup']:.1f}× "
              f"| {r['floor_ms']:.2f} | {r['floor_ratio']:.2f} | {r['gbs']:.1f} |")


if __name__ == "__main__":
    main()
