#!/usr/bin/env bash
# Packaging smoke test: build the sdist and the wheel, install the wheel in a fresh virtual
# environment and check that it imports, carries its licence and runs its entry point.  The
# dependencies are not downloaded again: the new venv sees the running interpreter's
# site-packages through a .pth line (after its own, so the wheel's tvnumba wins over an
# editable install there, whose import hook a .pth-added path does not load).
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip install -q "build>=1"
# `python -m build .` builds the sdist, then the wheel FROM that sdist (isolated, setuptools
# >= 77): the wheel installed below is the sdist's, so both artifacts are checked.
python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
grep -q "Building wheel from sdist" "$work/build.log"
ls "$work/dist"
tar -tzf "$work"/dist/tvnumba-*.tar.gz >"$work/sdist.txt"   # (no pipe into grep -q: SIGPIPE)
grep -q "^tvnumba-[^/]*/LICENSE$" "$work/sdist.txt"
python -m venv "$work/venv"
python - "$work/venv" <<'PY'
import subprocess, sys, sysconfig
venv = sys.argv[1]
site = subprocess.check_output([f"{venv}/bin/python", "-c",
                                "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               text=True).strip()
paths = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
with open(f"{site}/_deps_of_the_running_python.pth", "w") as fh:
    fh.write("\n".join(paths) + "\n")
PY
"$work/venv/bin/python" -m pip install -q --no-deps --force-reinstall "$work"/dist/tvnumba-*.whl
cd "$work"   # not the checkout: import the installed wheel
"$work/venv/bin/python" - <<'PY'
import importlib.metadata as md
import pathlib

import sys

import numpy as np

import tvnumba

path = pathlib.Path(tvnumba.__file__)
assert path.is_relative_to(sys.prefix), (path, sys.prefix)  # the wheel, not a checkout
assert md.version("tvnumba") == tvnumba.__version__
assert md.metadata("tvnumba")["License-Expression"] == "BSD-3-Clause"
assert tvnumba.tv(np.array([0.0, 1.0, 3.0])) == 3.0
print("wheel OK:", path.parent)
PY
"$work/venv/bin/tvnumba" --version
