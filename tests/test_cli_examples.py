"""Every ``tvnumba`` command the documentation shows runs, and the scripts in examples/.

The commands are taken from README.md, docs/*.rst and the commands' ``--help`` texts;
bash expands each line (quotes, globs, redirections) in a folder of small files with the
names the examples use, and one Python process runs them all through
:func:`tvnumba.cli.main` (a command with ``--scheduler`` needs a cluster: only its options
are checked).  The SLURM script runs with the ``SLURM_*`` variables of an array job.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
iio = pytest.importorskip("imageio.v3")
zarr = pytest.importorskip("zarr", minversion="3")
pytest.importorskip("distributed")

from test_io import write_ome  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLURM_SCRIPT = os.path.join(ROOT, "examples", "slurm_denoise.sh")


def _env():
    return dict(os.environ, NUMBA_NUM_THREADS="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ------------------------------------------------------------------ finding the examples
_COMMAND = re.compile(r"^(?:tvnumba|python -m tvnumba)\s")


def _is_command(line: str) -> bool:
    return any(_COMMAND.match(part.strip()) for part in re.split(r"&&|;", line))


def _code_lines(path: str):
    """Lines of the code blocks of a Markdown or reStructuredText file."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if path.endswith(".md"):
        inside = False
        for line in lines:
            if line.lstrip().startswith("```"):
                inside = not inside
            elif inside:
                yield line
        return
    indent = None
    for line in lines:
        if indent is not None:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                indent = None
            else:
                yield line
                continue
        if re.match(r"\s*\.\. (code-block|code|sourcecode)::", line) \
                or line.rstrip().endswith("::"):
            indent = len(line) - len(line.lstrip())


def _help_lines():
    """The ``examples:`` sections of every command's ``--help``."""
    from tvnumba import cli

    commands = cli._build_parser()._subparsers._group_actions[0].choices
    for name in ("tv", "denoise", "deconvolve", "inpaint", "warm"):
        text = commands[name].format_help().splitlines()
        start = text.index("examples:") + 1
        for line in text[start:]:
            if not line.strip():
                break
            yield f"tvnumba {name} --help", line


def documented_examples() -> list[tuple[str, str]]:
    """``(where, command line)`` for every tvnumba command in the documentation."""
    found = []
    sources = [os.path.join(ROOT, "README.md")] + sorted(
        os.path.join(ROOT, "docs", n) for n in os.listdir(os.path.join(ROOT, "docs"))
        if n.endswith(".rst"))
    for path in sources:
        for line in _code_lines(path):
            if _is_command(line):
                found.append((os.path.relpath(path, ROOT), line.strip()))
    found += [(where, line.strip()) for where, line in _help_lines() if _is_command(line)]
    return found


# ------------------------------------------------------------------------ the fixtures
def _make_files(d):
    """Small files under every name the examples use: 16 x 16 images, 4 x 16 x 16
    volumes, a PSF and masks of matching shapes."""
    rng = np.random.default_rng(0)

    def png(path):
        iio.imwrite(path, (rng.random((16, 16)) * 255).astype(np.uint8))

    def tif(path, shape=(16, 16), **kw):
        tifffile.imwrite(path, rng.random(shape).astype(np.float32),
                         photometric="minisblack", **kw)

    for name in ("image.png", "noisy.png", "damaged.png"):
        png(d / name)
    for name in ("a.tif", "b.tif", "blurred.tif"):
        tif(d / name)
    for name in ("volume.tif", "vol.tif", "stack.tif", "big.tif"):
        tif(d / name, (4, 16, 16))
    for folder, make in (("data", png), ("raw", tif), ("more", png), ("frames", png),
                         ("blurred", tif), ("damaged", png)):
        (d / folder).mkdir()
        for k in (1, 2):  # names unique across folders: one output folder takes them all
            make(d / folder / f"{folder}{k}{'.png' if make is png else '.tif'}")
    g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    tifffile.imwrite(d / "psf.tif", np.outer(g, g).astype(np.float32))
    tifffile.imwrite(d / "psf3d.tif", np.multiply.outer(g[1:4], np.outer(g, g)).astype(
        np.float32), photometric="minisblack")
    mask = np.zeros((16, 16), np.uint8)
    mask[5:7, :] = 255
    iio.imwrite(d / "scratches.png", mask)
    tifffile.imwrite(d / "dead_pixels.tif", mask)
    zarr.create_array(str(d / "vol.zarr"), data=rng.random((4, 16, 16)).astype(np.float32),
                      chunks=(4, 8, 8))
    write_ome(d / "cells.ome.zarr", (rng.random((2, 4, 16, 16)) * 4000).astype(np.uint16),
              [("c", "channel"), ("z", "space"), ("y", "space"), ("x", "space")],
              [1.0, 2.0, 0.5, 0.5], chunks=(1, 4, 8, 8))


_RUNNER = r"""
import contextlib, io, json, os, sys
from tvnumba import cli


def run(argv):
    if "--scheduler" in argv:  # needs a running cluster: check the options only
        command = next(a for a in argv if not a.startswith("-"))
        cli._build_parser().parse_args(cli._join_lists(argv, cli._LIST_OPTIONS[command]))
        return 0
    return cli.main(argv)


if __name__ == "__main__":
    results, done = [], {}
    for name in sorted(os.listdir(sys.argv[1]), key=int):
        with open(os.path.join(sys.argv[1], name), "rb") as fh:
            argv = [a.decode() for a in fh.read().split(b"\0")[:-1]]
        if tuple(argv) in done:  # the same command shown in several places runs once
            results.append(dict(done[tuple(argv)], index=int(name)))
            continue
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                rc = run(argv)
            except SystemExit as e:
                rc = e.code
        done[tuple(argv)] = dict(index=int(name), argv=argv, rc=rc,
                                 stderr=err.getvalue()[-800:])
        results.append(done[tuple(argv)])
    print(json.dumps(results))
"""


def test_documented_examples_run(tmp_path):
    examples = documented_examples()
    where = {w for w, _ in examples}
    assert {"README.md", "docs/cli_dask.rst", "tvnumba denoise --help"} <= where, where
    work = tmp_path / "work"
    work.mkdir()
    _make_files(work)
    calls = tmp_path / "calls"
    calls.mkdir()
    # bash expands each line; the shell functions record the tvnumba calls it makes.
    script = ["set -e", f"cd {work}",
              f'tvnumba() {{ printf "%s\\0" "$@" > "{calls}/$n"; }}',
              'python() { if [ "$1 $2" = "-m tvnumba" ]; then shift 2; tvnumba "$@"; '
              'else command python "$@"; fi; }',
              "pip() { :; }"]
    for i, (_, line) in enumerate(examples):
        script += [f"n={i}", line]
    r = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert len(os.listdir(calls)) == len(examples)
    (tmp_path / "runner.py").write_text(_RUNNER)
    r = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(calls)],
                       capture_output=True, text=True, cwd=work, env=_env(), timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    failed = [(examples[x["index"]], x["rc"], x["stderr"])
              for x in json.loads(r.stdout.splitlines()[-1]) if x["rc"] != 0]
    assert not failed, failed


# ------------------------------------------------------------------ examples/slurm_denoise.sh
def run_slurm(args, task, first, last, count, step=1):
    env = dict(_env(), TVNUMBA=f"{sys.executable} -m tvnumba",
               SLURM_ARRAY_TASK_ID=str(task), SLURM_ARRAY_TASK_MIN=str(first),
               SLURM_ARRAY_TASK_MAX=str(last), SLURM_ARRAY_TASK_COUNT=str(count),
               SLURM_ARRAY_TASK_STEP=str(step), SLURM_CPUS_PER_TASK="1")
    return subprocess.run(["bash", SLURM_SCRIPT, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_slurm_array_covers_every_input_once(tmp_path):
    """A 1-based array (--array=1-3) over five inputs: the last one is not skipped, .bmp
    counts, and a.png / a.tif (one output name) are refused rather than mixed up."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.bmp", "d.png"):
        iio.imwrite(src / name, (rng.random((8, 8)) * 255).astype(np.uint8))
    for name in ("a.tif", "c.tif"):
        tifffile.imwrite(src / name, rng.random((8, 8)).astype(np.float32))
    out = tmp_path / "out"
    seen, codes = [], {}
    for task in (1, 2, 3):
        r = run_slurm([src, out, "--weight", "0.1"], task, 1, 3, 3)
        codes[task] = r.returncode
        seen += [json.loads(line) for line in r.stdout.splitlines()
                 if line.startswith("{") and "summary" not in line]
    by_input = {os.path.basename(rec["input"]): rec for rec in seen}
    assert sorted(by_input) == ["a.png", "a.tif", "b.bmp", "c.tif", "d.png"]
    assert len(seen) == 5  # each input in one task
    assert {n for n, rec in by_input.items() if rec["status"] == "ok"} == {"b.bmp", "c.tif",
                                                                          "d.png"}
    assert all("same output" in by_input[n]["error"] for n in ("a.png", "a.tif"))
    assert sorted(os.listdir(out)) == ["b.tif", "c.tif", "d.tif"]
    # the tasks that held a.png or a.tif say so in their exit status
    failed = {t for t in codes if codes[t] == 1}
    assert failed and all(codes[t] in (0, 1) for t in codes)


def test_slurm_usage_errors(tmp_path):
    r = run_slurm([tmp_path / "no_such_folder", tmp_path / "out"], 0, 0, 0, 1)
    assert r.returncode == 2 and "no such folder" in r.stderr
    r = run_slurm([tmp_path, tmp_path / "out"], 7, 1, 7, 3)  # --array=1,3,7
    assert r.returncode == 2 and "not a regular range" in r.stderr
    assert not (tmp_path / "out").exists()


def test_jobqueue_example_compiles():
    path = os.path.join(ROOT, "examples", "jobqueue_volume.py")
    with open(path, encoding="utf-8") as fh:
        source = fh.read()
    compile(source, path, "exec")
    assert '"--scheduler", cluster.scheduler_address' in source
