"""A/B timing of two tvnumba checkouts, interleaved on one machine: the CPU TV kernels,
or ``denoise_tv_beta``.

On a shared or noisy machine, a change is only visible against the old code timed in the
same minutes.  This script alternates fresh processes of the two checkouts (``--rounds``
times) on the same data and prints the time of each job per round:

    git worktree add /tmp/tv-old HEAD~1          # or: git archive HEAD~1 tvnumba | tar -x -C /tmp/tv-old
    python benchmarks/ab_kernels.py /tmp/tv-old .  # 256³ float32, β = 1 and 1.7, iso and aniso
    python benchmarks/ab_kernels.py /tmp/tv-old . --shape 2048x2048
    python benchmarks/ab_kernels.py /tmp/tv-old . --denoise --shape 512x512    # β = 0.5, 1, 1.5, 2
    python benchmarks/ab_kernels.py /tmp/tv-old . --denoise --shape 2048x2048

``--denoise`` times ``denoise_tv_beta`` (default eps and method, float32) on camera
resized to the shape, plus Gaussian noise σ = 0.1 (seed 0): the best of ``--repeat``
warm calls per process.

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

DENOISE_CHILD = r"""
import sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
import tvnumba
assert tvnumba.__file__.startswith(sys.argv[1]), tvnumba.__file__
from skimage import data, img_as_float
from skimage.transform import resize
shape = tuple(int(n) for n in sys.argv[2].split("x"))
repeat = int(sys.argv[3])
clean = resize(img_as_float(data.camera()), shape, order=1)
f = (clean + 0.1 * np.random.default_rng(0).standard_normal(shape)).astype(np.float32)
cells = []
for beta, w in ((0.5, 0.04), (1.0, 0.1), (1.5, 0.25), (2.0, 0.5)):
    tvnumba.denoise_tv_beta(f[:64, :64], w, beta)  # compile / warm
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        tvnumba.denoise_tv_beta(f, w, beta)
        best = min(best, time.perf_counter() - t)
    cells.append(f"{best * 1e3:.1f}")
print(" | ".join(cells))
"""

DENOISE_JOBS = [f"denoise β={b}" for b in (0.5, 1.0, 1.5, 2.0)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--shape", default="256x256x256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--denoise", action="store_true", help="time denoise_tv_beta instead")
    ap.add_argument("--repeat", type=int, default=3, help="warm denoise calls per process")
    args = ap.parse_args(argv)
    child, jobs = (DENOISE_CHILD, DENOISE_JOBS) if args.denoise else (CHILD, JOBS)
    extra = [str(args.repeat)] if args.denoise else []

    def run(path):
        out = subprocess.run([sys.executable, "-c", child, os.path.abspath(path), args.shape,
                              *extra], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    run(args.old)
    run(args.new)
    what = (f"best of {args.repeat} warm denoise_tv_beta calls" if args.denoise
            else "median of 7 warm calls")
    print(f"{args.shape} float32, ms ({what} per process)\n")
    print("| round | checkout | " + " | ".join(jobs) + " |")
    print("|---" * (len(jobs) + 2) + "|")
    for r in range(1, args.rounds + 1):
        for name, path in (("old", args.old), ("new", args.new)):
            print(f"| {r} | {name} | {run(path)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
