"""``tvnumba denoise``: batch denoising from the command line (run through subprocess).

References are the library call on the same array (``denoise_tv_beta``), the kill test
compares a killed-then-resumed run with a clean one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
iio = pytest.importorskip("imageio.v3")

from tvnumba import denoise_tv_beta  # noqa: E402
from tvnumba.io import clear_stale_temporaries, temporary_name  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return dict(os.environ, NUMBA_NUM_THREADS="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tvnumba", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=timeout)


def json_lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("in")
    rng = np.random.default_rng(1)
    gray = np.clip(0.5 + 0.2 * rng.standard_normal((40, 48)), 0, 1)
    iio.imwrite(d / "gray.png", (gray * 255).round().astype(np.uint8))
    rgb = (rng.random((24, 20, 3)) * 255).astype(np.uint8)
    iio.imwrite(d / "rgb.png", rgb)
    vol = rng.random((5, 16, 18)).astype(np.float32)
    tifffile.imwrite(d / "vol.tif", vol, imagej=True, resolution=(4.0, 4.0),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
    stack = (rng.random((3, 16, 16)) * 65535).astype(np.uint16)
    tifffile.imwrite(d / "stack.tif", stack, photometric="minisblack")
    bad = d / "bad"
    bad.mkdir()
    nan = rng.random((8, 8))
    nan[3, 3] = np.nan
    tifffile.imwrite(bad / "nan.tif", nan)
    (bad / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (bad / "empty.tif").write_bytes(b"")
    tifffile.imwrite(bad / "wide.tif", np.zeros((8, 8), np.float32))  # 2-D: bad --as-batch
    return d


def test_denoise_outputs_match_library(data, tmp_path):
    out = tmp_path / "out"
    r = run_cli("denoise", data / "gray.png", data / "rgb.png", data / "vol.tif", "-o", out,
                "--weight", "0.15", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    assert sorted(os.listdir(out)) == ["gray.tif", "rgb.tif", "vol.tif"]

    gray = iio.imread(data / "gray.png")
    got = tifffile.imread(out / "gray.tif")
    assert got.dtype == np.float32 and got.shape == gray.shape
    np.testing.assert_allclose(got, denoise_tv_beta(gray, 0.15), atol=1e-6)

    rgb = iio.imread(data / "rgb.png")  # coupled channels on the last axis
    np.testing.assert_allclose(tifffile.imread(out / "rgb.tif"),
                               denoise_tv_beta(rgb, 0.15, channel_axis=-1), atol=1e-6)

    # ImageJ spacing (Z 0.5) and resolution (4 px/unit -> 0.25) are the default spacing,
    # and are written back.
    vol = tifffile.imread(data / "vol.tif")
    np.testing.assert_allclose(tifffile.imread(out / "vol.tif"),
                               denoise_tv_beta(vol, 0.15, spacing=(0.5, 0.25, 0.25)),
                               atol=1e-6)
    with tifffile.TiffFile(out / "vol.tif") as tif:
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)
        num, den = tif.pages[0].tags["XResolution"].value
        assert num / den == pytest.approx(4.0)


def test_options_reach_the_solver(data, tmp_path):
    r = run_cli("denoise", data / "vol.tif", "-o", tmp_path, "--weight", "0.05", "--beta",
                "0.5", "--spacing", "1", "2", "2", "--anisotropic", "--eps", "1e-4",
                "--max-iter", "50", "--suffix", "_b05", "--json")
    assert r.returncode == 0, r.stderr
    rec, summary = json_lines(r.stdout)
    vol = tifffile.imread(data / "vol.tif")
    ref, info = denoise_tv_beta(vol, 0.05, 0.5, spacing=(1, 2, 2), isotropic=False, eps=1e-4,
                                max_num_iter=50, return_info=True)
    np.testing.assert_allclose(tifffile.imread(tmp_path / "vol_b05.tif"), ref, atol=1e-6)
    assert rec["method"] == info.method == "mm"
    assert rec["iterations"] == info.iterations
    assert rec["converged"] == info.converged
    assert rec["parameters"]["beta"] == 0.5 and rec["parameters"]["isotropic"] is False
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["shape"] == [5, 16, 18] and rec["dtype"] == "float32"
    assert summary["summary"] is True and summary["ok"] == 1 and summary["failed"] == 0


def test_like_input_and_as_batch(data, tmp_path):
    r = run_cli("denoise", data / "stack.tif", data / "gray.png", "-o", tmp_path,
                "--as-batch", "--like-input", "--json")
    # gray.png is 2-D: --as-batch refuses it, the stack still runs
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"tvnumba denoise: error: {data / 'gray.png'}: --as-batch needs a stack of 2-D "
        "images, got shape (40, 48)"]
    stack = tifffile.imread(data / "stack.tif")
    got = tifffile.imread(tmp_path / "stack.tif")
    assert got.dtype == np.uint16 and got.shape == stack.shape
    for i in range(3):  # each page on its own, then the inverse of img_as_float
        ref = denoise_tv_beta(stack[i], 0.1)
        np.testing.assert_array_equal(got[i], np.rint(np.clip(ref, 0, 1) * 65535))
    rec = json_lines(r.stdout)[0]
    assert len(rec["iterations"]) == 3


def test_bad_files_one_line_each_and_continue(data, tmp_path):
    r = run_cli("denoise", data / "bad", data / "gray.png", data / "missing.tif",
                str(data / "nomatch*.png"), "-o", tmp_path, "--json")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    reasons = {ln.split(": ")[2]: ln for ln in lines}
    assert len(lines) == 5, r.stderr
    for name in ("bad/nan.tif", "bad/corrupt.png", "bad/empty.tif", "missing.tif",
                 "nomatch*.png"):
        assert str(data / name) in reasons, (name, lines)
    assert "NaN" in reasons[str(data / "bad/nan.tif")]
    assert all(ln.startswith("tvnumba denoise: error: ") for ln in lines)
    recs = json_lines(r.stdout)
    assert recs[-1]["failed"] == 5 and recs[-1]["ok"] == 2  # gray.png and bad/wide.tif
    assert os.path.exists(tmp_path / "gray.tif")
    assert sorted(os.listdir(tmp_path)) == ["gray.tif", "wide.tif"]


def test_skip_overwrite_and_conflicts(data, tmp_path):
    r = run_cli("denoise", data / "gray.png", "-o", tmp_path, "--json")
    assert r.returncode == 0
    first = os.stat(tmp_path / "gray.tif").st_mtime_ns
    r = run_cli("denoise", data / "gray.png", "-o", tmp_path, "--json")
    assert r.returncode == 0 and json_lines(r.stdout)[0]["status"] == "skipped"
    assert os.stat(tmp_path / "gray.tif").st_mtime_ns == first
    r = run_cli("denoise", data / "gray.png", "-o", tmp_path, "--json", "--overwrite",
                "--weight", "0.3")
    assert r.returncode == 0 and json_lines(r.stdout)[0]["status"] == "ok"
    gray = iio.imread(data / "gray.png")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "gray.tif"),
                               denoise_tv_beta(gray, 0.3), atol=1e-6)
    # Two inputs with one output name; an output that would replace its input.
    other = tmp_path / "sub"
    other.mkdir()
    tifffile.imwrite(other / "gray.tif", np.zeros((4, 4), np.float32))
    r = run_cli("denoise", data / "gray.png", other / "gray.tif", "-o", other, "--overwrite")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert r.stderr.count("would replace an input file") == 2
    r = run_cli("denoise", data / "gray.png", other / "gray.tif", "-o", tmp_path / "o2")
    assert r.returncode == 1 and "same output" in r.stderr


@pytest.mark.parametrize("start_method", ["spawn", "fork"])
def test_jobs_pool_matches_serial(data, tmp_path, start_method):
    inputs = [data / "gray.png", data / "rgb.png", data / "vol.tif", data / "stack.tif"]
    r1 = run_cli("denoise", *inputs, "-o", tmp_path / "serial", "-q")
    r2 = run_cli("denoise", *inputs, "-o", tmp_path / "pool", "-q", "--jobs", "2",
                 "--threads", "1", "--start-method", start_method)
    assert r1.returncode == r2.returncode == 0, (r1.stderr, r2.stderr)
    assert r2.stderr == ""
    names = sorted(os.listdir(tmp_path / "serial"))
    assert names == sorted(os.listdir(tmp_path / "pool")) and len(names) == 4
    for n in names:
        np.testing.assert_array_equal(tifffile.imread(tmp_path / "serial" / n),
                                      tifffile.imread(tmp_path / "pool" / n))


@pytest.mark.parametrize(("args", "option"), [
    (["--weight", "-1"], "--weight"),
    (["--weight", "abc"], "--weight"),
    (["--beta", "0"], "--beta"),
    (["--jobs", "0"], "-j/--jobs"),
    (["--threads", "x"], "--threads"),
    (["--max-iter", "0"], "--max-iter"),
    (["--method", "newton"], "--method"),
    (["--spacing", "-1"], "--spacing"),
    (["--device", "tpu"], "--device"),
])
def test_bad_option_is_usage_error(data, tmp_path, args, option):
    r = run_cli("denoise", data / "gray.png", "-o", tmp_path, *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(
        "tvnumba denoise: error: argument " + option), r.stderr
    assert os.listdir(tmp_path) == []


def test_missing_outdir_is_usage_error(data):
    r = run_cli("denoise", data / "gray.png")
    assert r.returncode == 2 and "-o/--outdir" in r.stderr


def test_weight_auto_passes_through(data, tmp_path):
    # Until the library accepts weight="auto", its own one-line message, per file.
    r = run_cli("denoise", data / "gray.png", "-o", tmp_path, "--weight", "auto", "-q")
    assert "Traceback" not in r.stderr
    if r.returncode == 1:
        assert r.stderr.count("\n") == 1 and "weight" in r.stderr
    else:
        assert r.returncode == 0 and os.path.exists(tmp_path / "gray.tif")


def test_help_version_and_exit_codes_documented():
    for cmd in ("tv", "denoise"):
        r = run_cli(cmd, "--help")
        assert r.returncode == 0
        assert "examples:" in r.stdout and f"tvnumba {cmd} " in r.stdout
        assert "exit status:" in r.stdout and "2  usage error" in r.stdout
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("tvnumba ")
    import tvnumba.cli

    assert "Exit status" in tvnumba.cli.__doc__


def test_clear_stale_temporaries(tmp_path):
    out = str(tmp_path / "a.tif")
    mine = temporary_name(out)
    # A dead process of this host (a pid above any live one), another host's writer of
    # an output this run owns, and one of an output it does not own.
    host = socket.gethostname().split(".")[0]
    dead = tmp_path / f".b.tif.{host}.4194999.tvnumba-tmp"
    far_mine = tmp_path / ".a.tif.othernode.12.tvnumba-tmp"
    far_other = tmp_path / ".c.tif.othernode.12.tvnumba-tmp"
    live = tmp_path / f".d.tif.{host}.{os.getppid()}.tvnumba-tmp"
    keep = tmp_path / "e.tif"
    for p in (mine, dead, far_mine, far_other, live, keep):
        open(p, "w").close()
    removed = clear_stale_temporaries(str(tmp_path), [out])
    assert sorted(map(os.path.basename, removed)) == sorted([dead.name, far_mine.name])
    assert sorted(os.listdir(tmp_path)) == sorted(
        [os.path.basename(mine), far_other.name, live.name, keep.name])


def test_killed_run_leaves_complete_outputs_and_resumes(tmp_path):
    """SIGKILL mid-batch: every output left is complete; a re-run finishes the batch,
    clears the temporaries and gives the clean run's outputs."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(7)
    shape = (96, 96)
    for i in range(12):
        tifffile.imwrite(src / f"img{i:02d}.tif", rng.random(shape).astype(np.float32))
    opts = ["--weight", "0.2", "--beta", "0.5", "--eps", "1e-5", "-q"]
    clean = tmp_path / "clean"
    r = run_cli("denoise", src, "-o", clean, *opts)
    assert r.returncode == 0, r.stderr

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "tvnumba", "denoise", str(src), "-o", str(out), *opts,
           "--jobs", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            done = [n for n in os.listdir(out) if n.endswith(".tif")] if out.exists() else []
            if len(done) >= 2:
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-way
        proc.wait()
    left = sorted(os.listdir(out))
    outputs = [n for n in left if not n.startswith(".")]
    assert 2 <= len(outputs) < 12, left  # killed mid-way, after the first outputs
    assert all(n.endswith(".tvnumba-tmp") for n in left if n.startswith("."))
    for n in outputs:  # complete: readable, right shape and dtype
        a = tifffile.imread(out / n)
        assert a.shape == shape and a.dtype == np.float32

    r = run_cli("denoise", src, "-o", out, *opts, "--json")
    assert r.returncode == 0, r.stderr
    recs = json_lines(r.stdout)
    assert sum(rec.get("status") == "skipped" for rec in recs) == len(outputs)
    assert sorted(os.listdir(out)) == sorted(os.listdir(clean))  # no temporaries left
    for n in os.listdir(clean):
        np.testing.assert_array_equal(tifffile.imread(out / n), tifffile.imread(clean / n))


# ------------------------------------------------------------------- tvnumba deconvolve
def test_deconvolve_outputs_match_library(data, tmp_path):
    from tvnumba import deconvolve_tv_beta

    y, x = np.mgrid[-2:3, -2:3]
    psf = np.exp(-(x * x + y * y) / 3.0)
    tifffile.imwrite(tmp_path / "psf.tif", (7 * psf).astype(np.float32))  # any positive scale
    out = tmp_path / "out"
    r = run_cli("deconvolve", data / "gray.png", data / "rgb.png", "--psf", tmp_path / "psf.tif",
                "-o", out, "--weight", "0.002", "--json")
    assert r.returncode == 0, r.stderr
    records = json_lines(r.stdout)
    assert [rec.get("status") for rec in records[:-1]] == ["ok", "ok"]
    assert records[-1]["summary"] and records[-1]["ok"] == 2
    assert all(rec["parameters"]["problem"] == "deconvolve" for rec in records[:-1])
    assert all(rec["weight"] == 0.002 for rec in records[:-1])
    gray = iio.imread(data / "gray.png")
    psf32 = (7 * psf).astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(tifffile.imread(out / "gray.tif"),
                               deconvolve_tv_beta(gray, psf32 / psf32.sum(), 0.002), atol=1e-6)
    rgb = iio.imread(data / "rgb.png")
    np.testing.assert_allclose(tifffile.imread(out / "rgb.tif"),
                               deconvolve_tv_beta(rgb, psf32 / psf32.sum(), 0.002,
                                                  channel_axis=-1), atol=1e-6)
    # periodic boundary reaches the solver: another result
    r = run_cli("deconvolve", data / "gray.png", "--psf", tmp_path / "psf.tif", "-o", out,
                "--weight", "0.002", "--boundary", "periodic", "--suffix", "_p", "--quiet")
    assert r.returncode == 0, r.stderr
    assert not np.allclose(tifffile.imread(out / "gray_p.tif"), tifffile.imread(out / "gray.tif"))


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "no such file"),
    (lambda p: tifffile.imwrite(p, -np.ones((3, 3), np.float32)), "positive sum"),
    (lambda p: p.write_bytes(b""), "empty file"),
])
def test_deconvolve_bad_psf_is_a_usage_error(data, tmp_path, make, match):
    psf = tmp_path / "psf.tif"
    make(psf)
    r = run_cli("deconvolve", data / "gray.png", "--psf", psf, "-o", tmp_path / "out")
    assert r.returncode == 2 and match in r.stderr and "--psf" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "gray.tif").exists()


def test_deconvolve_help_and_psf_dimension_error(data, tmp_path):
    r = run_cli("deconvolve", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "--psf" in r.stdout
    assert "deconvolve" in run_cli("--help").stdout
    tifffile.imwrite(tmp_path / "psf3.tif", np.ones((3, 3, 3), np.float32), photometric="minisblack")
    r = run_cli("deconvolve", data / "gray.png", "--psf", tmp_path / "psf3.tif",
                "-o", tmp_path / "out")
    # a per-file error: one line naming the file, exit status 1
    assert r.returncode == 1 and "gray.png" in r.stderr and "Traceback" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error" in ln]) == 1


# ---------------------------------------------------------------------- tvnumba inpaint
def test_inpaint_outputs_match_library(data, tmp_path):
    from tvnumba import inpaint_tv_beta

    gray = iio.imread(data / "gray.png")
    mask = np.zeros(gray.shape, np.uint8)
    mask[10:14, :] = 255
    mask[:, 30:33] = 1
    iio.imwrite(tmp_path / "mask.png", mask)
    rgb_mask = np.repeat(mask[..., None], 3, axis=-1)  # a mask drawn in colour
    rgb_mask[..., 1:] = 0
    iio.imwrite(tmp_path / "mask_rgb.png", rgb_mask)
    out = tmp_path / "out"
    r = run_cli("inpaint", data / "gray.png", "--mask", tmp_path / "mask.png", "-o", out,
                "--json")
    assert r.returncode == 0, r.stderr
    rec = json_lines(r.stdout)[0]
    assert rec["status"] == "ok" and rec["parameters"]["problem"] == "inpaint"
    want = inpaint_tv_beta(gray, mask != 0)
    got = tifffile.imread(out / "gray.tif")
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_array_equal(got[mask == 0], (gray / 255.0).astype(np.float32)[mask == 0])
    r = run_cli("inpaint", data / "gray.png", "--mask", tmp_path / "mask_rgb.png", "-o", out,
                "--suffix", "_rgbmask", "--quiet")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(tifffile.imread(out / "gray_rgbmask.tif"), want, atol=1e-6)


def test_inpaint_bad_mask(data, tmp_path):
    r = run_cli("inpaint", data / "gray.png", "--mask", tmp_path / "none.png", "-o", tmp_path)
    assert r.returncode == 2 and "--mask" in r.stderr and "no such file" in r.stderr
    iio.imwrite(tmp_path / "small.png", np.zeros((5, 5), np.uint8))
    r = run_cli("inpaint", data / "gray.png", "--mask", tmp_path / "small.png",
                "-o", tmp_path / "out")
    assert r.returncode == 1 and "gray.png" in r.stderr and "mask" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("inpaint", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "nonzero" in r.stdout
