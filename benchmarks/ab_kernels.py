"""A/B timing of the CPU TV kernels of two tvnumba checkouts, interleaved on one machine.

On a shared or noisy machine, a kernel change is only visible against the old kernel timed
in the same minutes.  This script alternates fresh processes of the two checkouts
(``--rounds`` times) on the same data and prints the median time of each job per round:

    git worktree add /tmp/tv-old HEAD~1          # or: git archive HEAD~1 tvnumba | tar -x -C /tmp/tv-old
    python benchmarks/ab_kernels.py /tmp/tv-old .  # 256³ float32, β = 1 and 1.7, iso and aniso
    python benchmarks/ab_kernels.py /tmp/tv-old . --shape 2048x2048

Each directory must contain the ``tvnumba`` package; the first round also compiles (its
Numba cache lives in that checkout), so it is run once untimed first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import tvnumba
assert tvnumba.__file__.startswith(sys.argv[1]), tvnumba.__file__
shape = tuple(int(n) for n in sys.argv[2].split("x"))
u = np.random.default_rng(0).random(shape, dtype=np.float32)
out = np.empty_like(u)
cells = []
for beta, iso in ((1.0, False), (1.7, False), (1.0, True), (1.7, True)):
    for vg in (False, True):
        if vg:
            fn = lambda: tvnumba.tv_value_and_grad(u, beta, isotropic=iso, out=out)
        else:
            fn = lambda: tvnumba.tv(u, beta, isotropic=iso)
        fn()
        ts = []
        for _ in range(7):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        cells.append(f"{np.median(ts) * 1e3:.1f}")
print(" | ".join(cells))
"""

JOBS = [f"{'iso' if iso else 'aniso'} β={b} {job}" for b, iso in
        ((1.0, False), (1.7, False), (1.0, True), (1.7, True)) for job in ("tv", "vg")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--shape", default="256x256x256")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    def run(path):
        out = subprocess.run([sys.executable, "-c", CHILD, os.path.abspath(path), args.shape],
                             check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    run(args.old)
    run(args.new)
    print(f"{args.shape} float32, ms (median of 7 warm calls per process)\n")
    print("| round | checkout | " + " | ".join(JOBS) + " |")
    print("|---" * (len(JOBS) + 2) + "|")
    for r in range(1, args.rounds + 1):
        for name, path in (("old", args.old), ("new", args.new)):
            print(f"| {r} | {name} | {run(path)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
