"""The ``tvnumba tv`` command: one-line errors per bad file, no tracebacks (defect F)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

imageio = pytest.importorskip("imageio.v3")
pytest.importorskip("skimage")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "tvnumba", "tv", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    img = (np.arange(64).reshape(8, 8) * 3).astype(np.uint8)
    imageio.imwrite(d / "ok.png", img)
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (d / "empty.png").write_bytes(b"")
    (d / "text.txt").write_text("not an image\n")
    return dict(ok=d / "ok.png", corrupt=d / "corrupt.png", empty=d / "empty.png",
                text=d / "text.txt", missing=d / "missing.png", dir=d)


def test_good_file(files):
    r = run_cli(files["ok"])
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert str(files["ok"]) in r.stdout


@pytest.mark.parametrize("bad", ["corrupt", "empty", "text", "missing", "dir"])
def test_bad_file_one_line_and_continue(files, bad):
    r = run_cli(files[bad], files["ok"])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"tvnumba tv: error: {files[bad]}: ")
    assert str(files["ok"]) in r.stdout  # the next file still ran


def test_all_bad_files_reported(files):
    bad = [files[k] for k in ("corrupt", "empty", "text", "missing")]
    r = run_cli(*bad)
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
def test_bad_option_is_usage_error(files, args, option):
    r = run_cli(*args, files["ok"])
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("tvnumba tv: error: argument " + option), r.stderr
    assert r.stdout == ""


def test_bad_channel_axis_for_a_file(files):
    r = run_cli("--channel-axis", "5", files["ok"])
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    line, = r.stderr.strip().splitlines()
    assert line.startswith(f"tvnumba tv: error: {files['ok']}: ") and "channel_axis" in line


def test_tv_json_spacing_axes(files, tmp_path):
    """--json gives one record per file (errors too) and a summary; --spacing and --axes
    reach tv()."""
    import json

    from tvnumba import tv

    img = np.arange(24, dtype=np.float64).reshape(2, 3, 4) ** 1.5
    path = tmp_path / "stack.tif"
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(path, img, photometric="minisblack")
    r = run_cli(path, files["missing"], "--json", "--spacing", "2", "0.5", "--axes", "1", "2")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"tvnumba tv: error: {files['missing']}: no such file"]
    ok, bad, summary = (json.loads(line) for line in r.stdout.splitlines())
    assert ok["tv"] == pytest.approx(tv(img, axes=(1, 2), spacing=(2, 0.5)), rel=1e-12)
    assert ok["status"] == "ok" and ok["shape"] == [2, 3, 4]
    assert bad["status"] == "error" and bad["error"] == "no such file"
    assert summary == {"summary": True, "files": 2, "ok": 1, "failed": 1}
    r = run_cli(path, "--spacing", "1", "2", "3", "4")  # one spacing too many: one line
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "spacing" in r.stderr
