"""The ``tvnumba`` command on image files: ``tv``, the ``denoise`` / ``deconvolve`` /
``inpaint`` batches, ``warm``, options checked before any work, and its process pool.

The command runs through ``subprocess``; references are the library calls on the same
arrays, and a killed run is compared with a clean one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
iio = pytest.importorskip("imageio.v3")
pytest.importorskip("skimage")

from tvnumba import denoise_tv_beta  # noqa: E402

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


# ---------------------------------------------------------------------------- tvnumba tv
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    img = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
    iio.imwrite(d / "ok.png", img)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (d / "empty.png").write_bytes(b"")
    (d / "text.txt").write_text("not an image\n")
    return dict(ok=d / "ok.png", corrupt=d / "corrupt.png", empty=d / "empty.png",
                text=d / "text.txt", missing=d / "missing.png", dir=d)


def test_good_file(files):
    r = run_cli("tv", files["ok"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert str(files["ok"]) in r.stdout


@pytest.mark.parametrize("bad", ["corrupt", "empty", "text", "missing", "dir"])
def test_bad_file_one_line_and_continue(files, bad):
    r = run_cli("tv", files[bad], files["ok"])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"tvnumba tv: error: {files[bad]}: ")
    assert str(files["ok"]) in r.stdout  # the next file still ran


def test_all_bad_files_reported(files):
    bad = [files[k] for k in ("corrupt", "empty", "text", "missing")]
    r = run_cli("tv", *bad)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert [ln.split(": ")[2] for ln in lines] == [str(p) for p in bad]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("args", "option"), [
    (["--beta", "-1"], "--beta"),
    (["--beta", "0"], "--beta"),
    (["--beta", "nan"], "--beta"),
    (["--beta", "abc"], "--beta"),
    (["--smoothing", "-1"], "--smoothing"),
    (["--smoothing", "inf"], "--smoothing"),
    (["--channel-axis", "x"], "--channel-axis"),
    (["--reduction", "max"], "--reduction"),
])
def test_tv_bad_option_is_usage_error(files, args, option):
    r = run_cli("tv", *args, files["ok"])
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("tvnumba tv: error: argument " + option), r.stderr
    assert r.stdout == ""


def test_bad_channel_axis_for_a_file(files):
    r = run_cli("tv", "--channel-axis", "5", files["ok"])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert line.startswith(f"tvnumba tv: error: {files['ok']}: ") and "channel_axis" in line


def test_tv_json_spacing_axes(files, tmp_path):
    """--json gives one record per file (errors too) and a summary; --spacing and --axes
    reach tv(), written with commas or spaces, before or after the files."""
    from tvnumba import tv

    img = np.arange(24, dtype=np.float64).reshape(2, 3, 4) ** 1.5
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, img, photometric="minisblack")
    r = run_cli("tv", path, files["missing"], "--json", "--spacing", "2", "0.5", "--axes", "1", "2")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"tvnumba tv: error: {files['missing']}: no such file"]
    ok, bad, summary = (json.loads(line) for line in r.stdout.splitlines())
    assert ok["tv"] == pytest.approx(tv(img, axes=(1, 2), spacing=(2, 0.5)), rel=1e-12)
    assert ok["status"] == "ok" and ok["shape"] == [2, 3, 4]
    assert bad["status"] == "error" and bad["error"] == "no such file"
    assert summary == {"summary": True, "files": 2, "ok": 1, "failed": 1}
    from tvnumba import cli

    parser = cli._build_parser()
    for argv in (["tv", "--spacing", "2,0.5", "--axes", "1,2", str(path)],
                 ["tv", "--json", "--spacing", "2", "0.5", "--axes", "1", "2", str(path)],
                 ["tv", "--axes=-2,-1", "--spacing", "2", "0.5", str(path)]):
        args = parser.parse_args(cli._join_lists(argv, cli._LIST_OPTIONS["tv"]))
        assert args.files == [str(path)] and args.spacing == (2.0, 0.5)
        assert args.axes in ((1, 2), (-2, -1))
    r = run_cli("tv", path, "--spacing", "1", "2", "3", "4")  # one spacing too many: one line
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "spacing" in r.stderr
    r = run_cli("tv", path, "--spacing", "1,,2")
    assert r.returncode == 2 and "comma-separated" in r.stderr


# ----------------------------------------------------------------------- tvnumba denoise
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
    r = run_cli("denoise", "-o", tmp_path, "--weight", "0.05", "--beta", "0.5", "--spacing",
                "1", "2", "2", data / "vol.tif", "--anisotropic", "--eps", "1e-4",
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
    # Both inputs of one output name are refused, whatever their order.
    r = run_cli("denoise", data / "gray.png", other / "gray.tif", "-o", tmp_path / "o2")
    assert r.returncode == 1 and r.stderr.count("same output") == 2
    assert not (tmp_path / "o2" / "gray.tif").exists()


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


def _has_cupy() -> bool:
    import importlib.util

    return importlib.util.find_spec("cupy") is not None


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
    # values no input can satisfy: once, before any file is read
    (["--method", "dct", "--beta", "1"], "--method"),
    (["--method", "cp", "--beta", "0.5"], "--method"),
    (["--method", "mm", "--beta", "3"], "--method"),
    pytest.param(["--device", "cuda"], "--device",
                 marks=pytest.mark.skipif(_has_cupy(), reason="CuPy is installed")),
    (["--shard", "3/3"], "--shard"),
    (["--memory-limit", "lots"], "--memory-limit"),
    (["--chunks", "0,8,8"], "--chunks"),
])
def test_bad_option_is_usage_error(data, tmp_path, args, option):
    out = tmp_path / "out"
    r = run_cli("denoise", data / "gray.png", data / "rgb.png", "-o", out, *args)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("tvnumba denoise: error: argument " + option), r.stderr
    assert sum("error" in ln for ln in lines) == 1
    assert not out.exists() or os.listdir(out) == []


def test_inpaint_has_no_automatic_weight(data, tmp_path):
    r = run_cli("inpaint", data / "gray.png", "--mask", data / "gray.png", "-o", tmp_path,
                "--weight", "auto")
    assert r.returncode == 2 and "no automatic weight" in r.stderr.splitlines()[-1]
    helps = run_cli("inpaint", "--help").stdout
    weight = helps[helps.index("--weight WEIGHT", helps.index("options:")):]
    assert "auto" not in weight[:weight.index("--beta")]


def test_unwritable_outdir_is_usage_error(data, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who may write anywhere")
        r = run_cli("denoise", data / "gray.png", "-o", locked)
        assert r.returncode == 2 and "not writable" in r.stderr.splitlines()[-1]
    finally:
        locked.chmod(0o700)


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
    from tvnumba import cli

    commands = cli._build_parser()._subparsers._group_actions[0].choices
    for cmd in ("tv", "denoise", "deconvolve", "inpaint", "warm"):
        text = commands[cmd].format_help()
        assert "examples:" in text and f"tvnumba {cmd} " in text
        assert "exit status:" in text and "2  usage error" in text
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("tvnumba ")
    assert "Exit status" in cli.__doc__


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
    tifffile.imwrite(tmp_path / "psf3.tif", np.ones((3, 3, 3), np.float32),
                     photometric="minisblack")
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


# ------------------------------------------------------------------ job arrays, pool, warm
def test_shards_split_the_inputs_after_the_name_check(tmp_path):
    """Every input lands in exactly one shard; two inputs of one output name are refused
    in whichever shard holds them, never written or skipped."""
    from tvnumba import cli

    for name in ("a.png", "a.tif", "b.bmp", "c.png", "d.tif"):
        (tmp_path / name).write_bytes(b"x")
    parser = cli._build_parser()
    seen = {}
    for k in range(3):
        args = parser.parse_args(["denoise", str(tmp_path), "-o", str(tmp_path / "o"),
                                  "--shard", f"{k}/3"])
        from tvnumba.io import expand_inputs

        planned = cli._plan(args, expand_inputs(args.inputs), cli._parameters(args))
        for i, (path, task, problem) in enumerate(planned):
            if i % 3 == k:
                assert path not in seen
                seen[path] = problem
    assert sorted(os.path.basename(p) for p in seen) == ["a.png", "a.tif", "b.bmp",
                                                         "c.png", "d.tif"]
    assert {os.path.basename(p) for p, problem in seen.items() if problem} == {"a.png",
                                                                                "a.tif"}
    assert all("same output" in problem for problem in seen.values() if problem)


def test_warm_command(tmp_path):
    r = run_cli("warm", "--command", "denoise,inpaint", "--dtype", "float64", "--ndim", "2",
                "--json")
    assert r.returncode == 0, r.stderr
    recs = json_lines(r.stdout)
    assert [(x["problem"], x["shape"]) for x in recs] == [
        ("denoise", [16, 16]), ("denoise", [16, 16, 3]), ("inpaint", [16, 16]),
        ("inpaint", [16, 16, 3])]
    assert all(x["method"] == "cp" for x in recs)
    r = run_cli("warm", "--dtype", "float16")
    assert r.returncode == 2 and "--dtype" in r.stderr


def test_warm_command_for_photon_counts():
    """--noise poisson solves the small cases with the Poisson loss (its primal-dual
    kernels), and is refused for inpainting before any work."""
    r = run_cli("warm", "--command", "deconvolve", "--noise", "poisson", "--dtype", "float64",
                "--ndim", "2", "--json")
    assert r.returncode == 0, r.stderr
    recs = json_lines(r.stdout)
    assert [(x["problem"], x["shape"], x["method"]) for x in recs] == [
        ("deconvolve", [16, 16], "cp"), ("deconvolve", [16, 16, 3], "cp")]
    r = run_cli("warm", "--command", "inpaint", "--noise", "poisson")
    assert r.returncode == 2 and "--noise poisson" in r.stderr and "inpaint" in r.stderr


_SIGNATURES = """
import sys
from numba.core.registry import CPUDispatcher
from tvnumba import cli
from tvnumba._batch import run_task
from tvnumba._warm import warm_for_tasks

def signatures():
    out = set()
    for name, mod in list(sys.modules.items()):
        if name.startswith("tvnumba"):
            for attr in list(vars(mod).values()):
                d = getattr(attr, "kernel", attr)
                if isinstance(d, CPUDispatcher):
                    out.update((d.py_func.__qualname__, str(s)) for s in d.signatures)
    return out

argv = sys.argv[1:]
args = cli._build_parser().parse_args(cli._join_lists(argv, cli._LIST_OPTIONS[argv[0]]))
p = cli._parameters(args)
tasks = [dict(input=i, output=i + ".out.tif", parameters=p, volume=False)
         for i in args.inputs]
warm_for_tasks(tasks)
before = signatures()
for t in tasks:
    assert run_task(t)["status"] == "ok"
print(sorted(signatures() - before))
"""


@pytest.mark.parametrize("options", [["--beta", "1"], ["--beta", "0.5"]])
def test_parent_compiles_what_the_workers_need(data, tmp_path, options):
    """With --jobs N the parent solves a small array like each kind of input before the
    pool starts; the real solves then need no kernel it did not load (so the workers
    load them from the cache instead of compiling them each)."""
    for name in ("gray.png", "rgb.png", "vol.tif"):
        (tmp_path / name).write_bytes((data / name).read_bytes())
    inputs = [str(tmp_path / n) for n in ("gray.png", "rgb.png", "vol.tif")]
    r = subprocess.run([sys.executable, "-c", _SIGNATURES, "denoise", *inputs, "-o",
                        str(tmp_path), *options], capture_output=True, text=True,
                       cwd=ROOT, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_workers_die_with_the_parent(tmp_path):
    """SIGKILL of the command alone: its pool workers (and the resource tracker) exit
    within seconds instead of running on."""
    psutil = pytest.importorskip("psutil")
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(6):
        tifffile.imwrite(src / f"i{i}.tif", rng.random((96, 96)).astype(np.float32))
    cmd = [sys.executable, "-m", "tvnumba", "denoise", str(src), "-o", str(tmp_path / "out"),
           "--jobs", "2", "--threads", "1", "--beta", "0.5", "--eps", "1e-8", "-q"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + 240
    children = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            children = parent.children(recursive=True)
            workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
            if len(workers) >= 2:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(children) >= 2, "the pool did not start"

    def running(p):
        try:
            return p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(c) for c in children):
        time.sleep(0.1)
    left = [c.pid for c in children if running(c)]
    for pid in left:  # do not leak them into the rest of the run
        os.kill(pid, signal.SIGKILL)
    assert not left


# --------------------------------------------------------------------------- photon counts
def test_denoise_and_deconvolve_poisson_counts(tmp_path):
    """--noise poisson: counts solved unscaled (the default weight from the mean count),
    --like-input writes rounded counts; a beta other than 1 is a usage error."""
    import tifffile

    rng = np.random.default_rng(0)
    y = rng.poisson(np.pad(np.full((16, 16), 8.0), 8, constant_values=2)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "cnt.tif", y)
    g = np.exp(-0.5 * (np.arange(5) - 2) ** 2)
    tifffile.imwrite(tmp_path / "psf.tif", np.outer(g, g))
    r = run_cli(*["denoise", str(tmp_path / "cnt.tif"), "-o", str(tmp_path / "a"), "--noise",
              "poisson", "--background", "1", "--like-input", "--json"])
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.splitlines()[0])
    assert rec["converged"] and rec["weight"] > 0.05
    out = tifffile.imread(tmp_path / "a" / "cnt.tif")
    assert out.dtype == np.uint16 and 6 <= out[16, 16] <= 10 and out.max() < 20
    r = run_cli(*["deconvolve", str(tmp_path / "cnt.tif"), "--psf", str(tmp_path / "psf.tif"),
              "-o", str(tmp_path / "b"), "--noise", "poisson", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["converged"]
    r = run_cli(*["denoise", str(tmp_path / "cnt.tif"), "-o", str(tmp_path / "c"), "--noise",
              "poisson", "--beta", "0.5"])
    assert r.returncode == 2 and "--beta >= 1" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*["denoise", str(tmp_path / "cnt.tif"), "-o", str(tmp_path / "d"), "--noise",
              "poisson", "--beta", "2", "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.splitlines()[0])["converged"]
