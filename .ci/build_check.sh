#!/usr/bin/env bash
# Packaging smoke test: build the sdist and the wheel, install the wheel in a fresh virtual
# environment (with the already-installed site packages visible, so nothing heavy is
# downloaded again) and check that it imports, carries its licence and runs its entry point.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m pip install -q "build>=1"
python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
ls "$work/dist"
tar -tzf "$work"/dist/tvnumba-*.tar.gz >"$work/sdist.txt"   # (no pipe into grep -q: SIGPIPE)
grep -q "^tvnumba-[^/]*/LICENSE$" "$work/sdist.txt"
python -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-deps --force-reinstall "$work"/dist/tvnumba-*.whl
cd "$work"   # not the checkout: import the installed wheel
"$work/venv/bin/python" - <<'PY'
import importlib.metadata as md
import pathlib

import numpy as np

import tvnumba

path = pathlib.Path(tvnumba.__file__)
assert "site-packages" in str(path), path
assert md.version("tvnumba") == tvnumba.__version__
assert md.metadata("tvnumba")["License-Expression"] == "BSD-3-Clause"
assert tvnumba.tv(np.array([0.0, 1.0, 3.0])) == 3.0
print("wheel OK:", path.parent)
PY
"$work/venv/bin/tvnumba" --version
