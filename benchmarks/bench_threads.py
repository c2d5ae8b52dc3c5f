"""Denoising on an idle and on a busy machine: tvnumba's threading default against the old one.

Each configuration runs in its own child Python (the threading layer is fixed once per
process), in --rounds rounds that alternate the configurations, so that a change in the
machine's other load hits all of them alike: camera 512² + 0.1·N(0, 1) noise, float32 and float64, β = 0.5 (weight 0.04, MM),
β = 1 (0.1, Chambolle-Pock), β = 1.5 (0.25, L-BFGS).  Each case is compiled and run once,
then timed --repeat times idle, then --repeat times next to two busy processes
(``while True: pass``) that the child starts and kills.  Reported over all rounds: median
idle and loaded time, the worst loaded time, and loaded/idle (medians).

Configurations (--configs):

* ``default``: the library as shipped (no threading variables set).
* ``old``: the behaviour before tvnumba chose a layer: ``NUMBA_THREADING_LAYER=omp``
  without ``OMP_WAIT_POLICY``.
* ``default@PYTHON``: the default under another interpreter, e.g. a virtual environment
  with the ``tbb`` wheel (``default@/path/to/venv/bin/python``).

    python benchmarks/bench_threads.py                       # old, then default
    python benchmarks/bench_threads.py --configs old default default@venv/bin/python \
        --rounds 4 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = [(0.5, 0.04), (1.0, 0.1), (1.5, 0.25)]
THREAD_VARS = ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "OMP_WAIT_POLICY")


def _child(repeat: int) -> None:
    sys.path.insert(0, ROOT)  # this checkout's tvnumba, whatever is installed
    import numba
    import numpy as np
    from skimage import data, img_as_float

    import tvnumba

    clean = img_as_float(data.camera())
    noisy64 = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    cases = [(dtype, beta, weight, noisy64.astype(dtype))
             for dtype in ("float32", "float64") for beta, weight in CASES]

    def times(f, beta, weight):
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            tvnumba.denoise_tv_beta(f, weight, beta)
            out.append(time.perf_counter() - t0)
        return out

    for _, beta, weight, f in cases:
        tvnumba.denoise_tv_beta(f, weight, beta)  # compile (or load the cache)
    idle = [times(f, beta, weight) for _, beta, weight, f in cases]
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        time.sleep(0.5)
        loaded = [times(f, beta, weight) for _, beta, weight, f in cases]
    finally:
        for p in busy:
            p.kill()
            p.wait()
    rows = [dict(dtype=dtype, beta=beta, weight=weight, idle=i, loaded=ld)
            for (dtype, beta, weight, _), i, ld in zip(cases, idle, loaded)]
    print(json.dumps(dict(layer=numba.threading_layer(), threads=numba.get_num_threads(),
                          module=tvnumba.__file__, rows=rows)))


def _run_config(config: str, repeat: int) -> dict:
    name, _, python = config.partition("@")
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if name == "old":
        env["NUMBA_THREADING_LAYER"] = "omp"
    elif name != "default":
        raise SystemExit(f"unknown configuration {config!r}")
    cmd = [python or sys.executable, os.path.abspath(__file__), "--child", "--repeat",
           str(repeat)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["old", "default"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per case and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.repeat)
        return
    results = {config: [] for config in args.configs}
    for _ in range(args.rounds):
        for config in args.configs:
            results[config].append(_run_config(config, args.repeat))
    print(f"camera 512², σ = 0.1; {args.rounds} rounds × {args.repeat} runs per case; "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '(unset)')}\n")
    print("| configuration | layer | dtype | β | weight | idle s | loaded s | loaded worst s "
          "| loaded / idle |")
    print("|---|---|---|---|---|---|---|---|---|")
    for config, rounds in results.items():
        label = config.split("@")[0] + (" (other python)" if "@" in config else "")
        layer = "/".join(sorted({r["layer"] for r in rounds}))
        for i, row in enumerate(rounds[0]["rows"]):
            idle = [t for r in rounds for t in r["rows"][i]["idle"]]
            loaded = [t for r in rounds for t in r["rows"][i]["loaded"]]
            ratio = statistics.median(loaded) / statistics.median(idle)
            print(f"| {label} | {layer} | {row['dtype']} | {row['beta']:g} | {row['weight']:g} "
                  f"| {statistics.median(idle):.3f} | {statistics.median(loaded):.3f} "
                  f"| {max(loaded):.3f} | {ratio:.1f}× |")


if __name__ == "__main__":
    main()
