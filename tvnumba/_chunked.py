"""A Zarr result written chunk by chunk that a killed run resumes.

The store is built under a hidden name next to its final one,
``OUTDIR/.<name>.tvnumba-partial``, with a folder ``.tvnumba-chunks`` inside it that
holds ``run.json`` (what is being computed) and one empty marker file per finished
chunk, created only after the chunk's data is written.  A chunk without its marker is
computed again, so a chunk whose writing was cut off is rewritten whole.  When every
chunk has its marker the folder is removed and the store renamed to its final name,
so a store under the final name is always complete.  A later run that finds the
partial store with the same ``run.json`` carries on from its markers; with another one
(other parameters or input) it starts again.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import numpy as np

_PARTIAL = ".tvnumba-partial"
_STATE = ".tvnumba-chunks"


def partial_path(final: str) -> str:
    """Where the store of ``final`` is built."""
    folder, name = os.path.split(os.path.normpath(final))
    return os.path.join(folder, "." + name + _PARTIAL)


@dataclass(frozen=True)
class Target:
    """What a worker needs to store one chunk (small, picklable)."""

    array: str
    done: str


def block_name(index) -> str:
    return ".".join(str(int(i)) for i in index)


def store_block(block: np.ndarray, block_info=None, *, target: Target) -> np.ndarray:
    """``map_blocks`` function: write the block into its region of the result, then its
    marker.  Returns a one-element array per block (the progress count)."""
    from ._zarr_io import write_region

    info = block_info[0]
    region = tuple(slice(lo, hi) for lo, hi in info["array-location"])
    write_region(target.array, region, block)
    with open(os.path.join(target.done, block_name(info["chunk-location"])), "wb"):
        pass
    return np.ones((1,) * block.ndim, np.int8)


class ChunkedStore:
    """The result store at ``final`` for a run described by ``run`` (JSON values)."""

    def __init__(self, final: str, run: dict):
        self.final = os.path.normpath(final)
        self.partial = partial_path(final)
        self.state = os.path.join(self.partial, _STATE)
        self.done_dir = os.path.join(self.state, "done")
        self.run = json.loads(json.dumps(run))  # as it reads back from run.json
        self.array: str | None = None
        self.restarted = False

    def complete(self) -> bool:
        return os.path.isdir(self.final)

    def _recorded(self):
        try:
            with open(os.path.join(self.state, "run.json")) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return None

    def open(self, create) -> set[str]:
        """Resume the partial store if it was started for the same run, else start one
        with ``create(path) -> array path``.  Returns the names of the finished chunks."""
        recorded = self._recorded() if os.path.isdir(self.partial) else None
        if recorded is not None and recorded.get("run") == self.run:
            self.array = os.path.join(self.partial, recorded["array"])
            return set(os.listdir(self.done_dir))
        if os.path.exists(self.partial):
            self.restarted = True
            shutil.rmtree(self.partial)
        array = create(self.partial)
        os.makedirs(self.done_dir)
        self.array = array
        tmp = os.path.join(self.state, "run.json.tmp")
        with open(tmp, "w") as fh:
            json.dump({"run": self.run, "array": os.path.relpath(array, self.partial)}, fh,
                      indent=1)
        os.replace(tmp, os.path.join(self.state, "run.json"))
        return set()

    def target(self) -> Target:
        return Target(array=self.array, done=self.done_dir)

    def finished(self, numblocks) -> int:
        """How many of the chunks have their marker."""
        done = set(os.listdir(self.done_dir))
        return sum(block_name(i) in done for i in np.ndindex(*numblocks))

    def finish(self, numblocks) -> bool:
        """Give the store its final name if every chunk is written; False otherwise."""
        if self.finished(numblocks) != int(np.prod(numblocks)):
            return False
        shutil.rmtree(self.state)
        if os.path.exists(self.final):  # --overwrite: the old result goes last
            old = self.partial + ".old"
            if os.path.exists(old):
                shutil.rmtree(old)
            os.replace(self.final, old)
            os.replace(self.partial, self.final)
            shutil.rmtree(old)
        else:
            os.replace(self.partial, self.final)
        return True

    def discard(self) -> None:
        """Remove the partial store (``--overwrite`` starts from nothing)."""
        if os.path.exists(self.partial):
            shutil.rmtree(self.partial)
