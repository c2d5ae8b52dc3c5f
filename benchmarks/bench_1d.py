"""1-D signals against an image of as many values: ``tv`` and ``tv_value_and_grad``
(float32, median of 7 warm calls), and the scratch a 1-D value allocates (peak RSS).

    python benchmarks/bench_1d.py [CHECKOUT]   # CHECKOUT: another tree to compare (A/B)
"""

import os
import subprocess
import sys

CODE = r"""
import resource, statistics, sys, time
import numpy as np
import tvnumba
n = 3162
rng = np.random.default_rng(0)
# first, in a fresh process: the peak is not yet raised by the timings
u = rng.random(8_000_000, dtype=np.float32)
tvnumba.tv(u[:9000], beta=1.7)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tvnumba.tv(u, beta=1.7)
extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / u.nbytes
print(f"1-D tv (beta 1.7) extra peak RSS: {extra:.2f}x the input")
for shape in ((n * n,), (n, n)):
    u = rng.random(shape).astype(np.float32)
    for beta in (1.0, 1.7):
        row = []
        for f in (tvnumba.tv, tvnumba.tv_value_and_grad):
            f(u, beta)
            ts = []
            for _ in range(7):
                t = time.perf_counter(); f(u, beta); ts.append(time.perf_counter() - t)
            row.append(1e3 * statistics.median(ts))
        print(f"| {'x'.join(map(str, shape))} | {beta:g} | {row[0]:.1f} | {row[1]:.1f} |")
"""


def main():
    trees = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.argv[1:]
    for tree in trees:
        print(f"\n{tree}\n| shape | β | tv ms | tv_value_and_grad ms |\n|---|---|---|---|",
              flush=True)
        env = dict(os.environ, PYTHONPATH=tree)
        subprocess.run([sys.executable, "-c", CODE], env=env, cwd=tree, check=True)


if __name__ == "__main__":
    main()
