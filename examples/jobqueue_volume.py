"""Denoise one volume larger than any node's memory on a SLURM cluster via dask-jobqueue.

Run it on a login node; it submits the Dask workers as SLURM jobs, then runs
``tvnumba denoise --scheduler`` against them::

    pip install dask-jobqueue
    python examples/jobqueue_volume.py /data/embryo.ome.zarr /data/denoised --weight 0.05

Each worker is one SLURM job holding one chunk at a time (one Dask thread) and giving
its ``CORES`` CPUs to tvnumba's kernels.  tvnumba sizes the chunks from the workers'
memory, writes ``/data/denoised/embryo.ome.zarr`` chunk by chunk, and a second run after
an interruption (a wall-time limit, a pre-empted job) computes only the missing chunks.
Compiled kernels are shared through ``NUMBA_CACHE_DIR`` (run ``tvnumba warm`` once).
"""

import os
import subprocess
import sys

from dask_jobqueue import SLURMCluster
from distributed import Client

JOBS = 8  # workers, one SLURM job each
CORES = 8  # CPUs per worker, all for tvnumba's kernels
MEMORY = "32GB"  # per worker: tvnumba chooses chunks that fit it
CACHE = os.path.expanduser("~/.cache/tvnumba-numba")  # on a file system every node sees


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    source, outdir, *options = argv
    cluster = SLURMCluster(
        cores=1, job_cpu=CORES, processes=1, memory=MEMORY, walltime="04:00:00",
        job_script_prologue=[f"export NUMBA_NUM_THREADS={CORES}",
                             f"export NUMBA_CACHE_DIR={CACHE}"])
    cluster.scale(jobs=JOBS)
    try:
        with Client(cluster) as client:
            client.wait_for_workers(1)
            return subprocess.call(["tvnumba", "denoise", source, "-o", outdir,
                                    "--scheduler", cluster.scheduler_address, *options],
                                   env=dict(os.environ, NUMBA_CACHE_DIR=CACHE))
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
