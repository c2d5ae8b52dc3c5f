"""``tvnumba denoise`` on volumes: Zarr, OME-Zarr and TIFF read lazily, denoised through
Dask on a local ``dask.distributed`` cluster, written chunk by chunk and resumed.

The reference is the Python API on the same Dask array (:func:`tvnumba.denoise_tv_beta`),
computed here; the command runs through ``subprocess``.
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
zarr = pytest.importorskip("zarr", minversion="3")
da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

from test_io import write_ome  # noqa: E402

import tvnumba  # noqa: E402
from tvnumba._volume import choose_chunks, memory_budget  # noqa: E402
from tvnumba.io import InputError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return dict(os.environ, NUMBA_NUM_THREADS="1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "tvnumba", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, env=_env(),
                          timeout=timeout)


def records(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def reference(data, chunks, **kw):
    """The Python API on a Dask array of ``data`` in ``chunks``, as float32."""
    u = tvnumba.denoise_tv_beta(da.from_array(data, chunks=chunks), **kw)
    return u.compute(scheduler="sync").astype(np.float32)


def test_zarr_and_tiff_volumes_match_the_python_api(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((6, 20, 24)).astype(np.float32)
    zarr.create_array(str(tmp_path / "v.zarr"), data=data, chunks=(3, 10, 12))
    tifffile.imwrite(tmp_path / "t.tif", data, imagej=True, resolution=(4.0, 4.0),
                     metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"})
    nan = data.copy()
    nan[4, 15, 20] = np.nan
    zarr.create_array(str(tmp_path / "nan.zarr"), data=nan, chunks=(3, 10, 12))
    out = tmp_path / "out"
    r = run_cli("denoise", tmp_path / "v.zarr", tmp_path / "t.tif", tmp_path / "nan.zarr",
                "-o", out, "--zarr", "--chunks", "3,10,12", "--depth", "3", "--workers", "1",
                "--json")
    assert r.returncode == 1, r.stderr
    v, t, bad, summary = records(r.stdout)
    # v.zarr: the input's chunks; the Python API on the same Dask array, bit for bit.
    assert v["status"] == "ok" and v["format"] == "zarr" and v["output"].endswith("v.zarr")
    assert v["chunks_total"] == 8 and v["chunks_skipped"] == 0 and v["chunks"] == [3, 10, 12]
    got = zarr.open_array(str(out / "v.zarr"), mode="r")
    assert got.dtype == np.float32 and got.chunks == (3, 10, 12)
    np.testing.assert_array_equal(got[:], reference(data, (3, 10, 12), weight=0.1, depth=3))
    # t.tif: read through tifffile's Zarr interface, with its ImageJ spacing.
    assert t["status"] == "ok" and t["spacing"] == [0.5, 0.25, 0.25]
    np.testing.assert_array_equal(
        zarr.open_array(str(out / "t.zarr"), mode="r")[:],
        reference(data, (3, 10, 12), weight=0.1, depth=3, spacing=(0.5, 0.25, 0.25)))
    # A NaN in one chunk fails that input only, in one line, and leaves no final store.
    assert bad["status"] == "error" and "NaN" in bad["error"]
    assert r.stderr.strip().splitlines() == [
        f"tvnumba denoise: error: {tmp_path / 'nan.zarr'}: {bad['error']}"]
    assert sorted(os.listdir(out)) == [".nan.zarr.tvnumba-partial", "t.zarr", "v.zarr"]
    assert summary["ok"] == 2 and summary["failed"] == 1
    # Complete outputs are skipped by the next run.
    r = run_cli("denoise", tmp_path / "v.zarr", "-o", out, "--json")
    assert r.returncode == 0 and records(r.stdout)[0]["status"] == "skipped"


def test_ome_zarr_in_and_out(tmp_path):
    """OME-Zarr inputs (NGFF 0.5 and 0.4) give OME-Zarr outputs of the same version,
    with their axes and voxel spacing; independent channels are solved one by one, and
    --like-input keeps the integer dtype."""
    rng = np.random.default_rng(1)
    cells = (rng.random((2, 4, 16, 18)) * 4000).astype(np.uint16)
    write_ome(tmp_path / "cells.ome.zarr", cells,
              [("c", "channel"), ("z", "space"), ("y", "space"), ("x", "space")],
              [1.0, 2.0, 0.5, 0.5], version="0.5", chunks=(1, 4, 8, 9))
    vol = rng.random((4, 16, 18)).astype(np.float32)
    write_ome(tmp_path / "old.zarr", vol, [("z", "space"), ("y", "space"), ("x", "space")],
              [3.0, 1.0, 1.0], version="0.4", chunks=(4, 8, 9))
    out = tmp_path / "out"
    r = run_cli("denoise", tmp_path / "cells.ome.zarr", tmp_path / "old.zarr", "-o", out,
                "--depth", "4", "--like-input", "--memory-limit", "1GB", "--json")
    assert r.returncode == 0, r.stderr
    c, o, _ = records(r.stdout)
    assert c["format"] == o["format"] == "ome-zarr"
    assert sorted(os.listdir(out)) == ["cells.ome.zarr", "old.ome.zarr"]

    group = zarr.open_group(str(out / "cells.ome.zarr"), mode="r")
    ms = group.attrs["ome"]["multiscales"][0]
    assert group.attrs["ome"]["version"] == "0.5"
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [1.0, 2.0, 0.5, 0.5]
    got = group["0"][:]
    assert got.dtype == np.uint16
    chunks = tuple(c["chunks"][1:])
    for k in range(2):  # each channel on its own, with the metadata's spacing
        want = tvnumba.denoise_tv_beta(da.from_array(cells[k], chunks=chunks), 0.1, depth=4,
                                       spacing=(2.0, 0.5, 0.5)).compute(scheduler="sync")
        np.testing.assert_array_equal(got[k], np.rint(np.clip(want, 0, 1) * 65535))

    old = zarr.open_group(str(out / "old.ome.zarr"), mode="r")
    assert old.metadata.zarr_format == 2 and old.attrs["multiscales"][0]["version"] == "0.4"
    reader = pytest.importorskip("ome_zarr.reader")
    from ome_zarr.io import parse_url

    for name in ("cells.ome.zarr", "old.ome.zarr"):  # the reference reader takes them
        node = next(iter(reader.Reader(parse_url(str(out / name)))()))
        assert node.data[0].shape == (cells.shape if name == "cells.ome.zarr" else vol.shape)


def _running(process, psutil) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _markers(out, name):
    done = out / f".{name}.tvnumba-partial" / ".tvnumba-chunks" / "done"
    return sorted(os.listdir(done)) if done.is_dir() else []


def test_killed_run_resumes_from_its_chunks(tmp_path):
    """SIGKILL mid-run: the local cluster's workers exit with the command, the partial
    store is left, the re-run computes only the chunks without a marker, and the result
    equals an uninterrupted run's exactly."""
    data = np.random.default_rng(2).random((16, 32, 32)).astype(np.float32)
    tifffile.imwrite(tmp_path / "v.tif", data, photometric="minisblack")
    out = tmp_path / "out"
    opts = ["--zarr", "--chunks", "8,8,8", "--depth", "3", "--eps", "1e-5", "-q"]
    cmd = [sys.executable, "-m", "tvnumba", "denoise", str(tmp_path / "v.tif"), "-o",
           str(out), *opts]
    psutil = pytest.importorskip("psutil")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    children = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(_markers(out, "v.zarr")) >= 3:
                children = psutil.Process(proc.pid).children(recursive=True)
                break
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)  # the command only: its workers follow it
        proc.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(c, psutil) for c in children):
        time.sleep(0.1)
    assert children and not [c.pid for c in children if _running(c, psutil)]
    done = _markers(out, "v.zarr")
    assert 3 <= len(done) < 32 and not (out / "v.zarr").exists(), done
    array = out / ".v.zarr.tvnumba-partial"
    stamps = {m: os.stat(array / "c" / m.replace(".", "/")).st_mtime_ns for m in done}

    r = run_cli("denoise", tmp_path / "v.tif", "-o", out, *opts, "--json")
    assert r.returncode == 0, r.stderr
    rec = records(r.stdout)[0]
    assert rec["chunks_total"] == 32 and rec["chunks_skipped"] == len(done)
    assert sorted(os.listdir(out)) == ["v.zarr"]
    for m, stamp in stamps.items():  # finished chunks were not written again
        assert os.stat(out / "v.zarr" / "c" / m.replace(".", "/")).st_mtime_ns == stamp
    np.testing.assert_array_equal(zarr.open_array(str(out / "v.zarr"), mode="r")[:],
                                  reference(data, (8, 8, 8), weight=0.1, depth=3, eps=1e-5))


def test_volume_usage_and_input_errors(tmp_path):
    data = np.zeros((4, 8, 8), np.float32)
    zarr.create_array(str(tmp_path / "v.zarr"), data=data)
    r = run_cli("denoise", tmp_path / "v.zarr", "-o", tmp_path / "o", "--scheduler",
                "tcp://127.0.0.1:1", "--workers", "2")
    assert r.returncode == 2 and "--scheduler" in r.stderr.splitlines()[-1]
    r = run_cli("denoise", tmp_path / "v.zarr", "-o", tmp_path / "o", "--chunks", "2,0,4")
    assert r.returncode == 2 and "--chunks" in r.stderr.splitlines()[-1]
    # Per input, before any cluster starts: chunks shorter than the halo; inpaint.
    r = run_cli("denoise", tmp_path / "v.zarr", "-o", tmp_path / "o", "--chunks", "2,8,8",
                "--depth", "3")
    assert r.returncode == 1 and "shorter than the halo" in r.stderr
    tifffile.imwrite(tmp_path / "mask.tif", np.zeros((4, 8, 8), np.uint8),
                     photometric="minisblack")
    r = run_cli("inpaint", tmp_path / "v.zarr", "--mask", tmp_path / "mask.tif",
                "-o", tmp_path / "o")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "through tvnumba denoise or deconvolve" in r.stderr
    # a 2-D PSF for a 3-D volume; the periodic boundary
    tifffile.imwrite(tmp_path / "psf2.tif", np.ones((3, 3), np.float32))
    r = run_cli("deconvolve", tmp_path / "v.zarr", "--psf", tmp_path / "psf2.tif",
                "-o", tmp_path / "o", "--workers", "1")
    assert r.returncode == 1 and "the PSF has 2 axes" in r.stderr
    tifffile.imwrite(tmp_path / "psf.tif", np.ones((3, 3, 3), np.float32),
                     photometric="minisblack")
    r = run_cli("deconvolve", tmp_path / "v.zarr", "--psf", tmp_path / "psf.tif",
                "-o", tmp_path / "o", "--boundary", "periodic", "--workers", "1")
    assert r.returncode == 1 and "--boundary extend only" in r.stderr


def test_deconvolve_volume_matches_the_python_api(tmp_path):
    """``tvnumba deconvolve`` on a Zarr volume: the Python API on the same Dask array
    (default halo: the denoising one plus the PSF's extent, cut to the chunks)."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(3)
    clean = np.zeros((8, 24, 24), np.float32)
    clean[2:6, 6:18, 8:16] = 1.0
    psf = np.ones((3, 3, 3), np.float32) / 27
    blurred = fftconvolve(np.pad(clean, 1, mode="edge"), psf, mode="valid")
    data = (blurred + 0.01 * rng.standard_normal(blurred.shape)).astype(np.float32)
    zarr.create_array(str(tmp_path / "b.zarr"), data=data, chunks=(8, 12, 12))
    tifffile.imwrite(tmp_path / "psf.tif", psf, photometric="minisblack")
    out = tmp_path / "out"
    r = run_cli("deconvolve", tmp_path / "b.zarr", "--psf", tmp_path / "psf.tif", "-o", out,
                "--weight", "0.01", "--chunks", "8,12,12", "--workers", "1", "--json")
    assert r.returncode == 0, r.stderr
    rec = records(r.stdout)[0]
    assert rec["status"] == "ok" and rec["chunks_total"] == 4
    got = zarr.open_array(str(out / "b.zarr"), mode="r")[:]
    from tvnumba.dask import deconvolve_depth

    depth = min(deconvolve_depth(0.01, 1.0, 1.0, (3, 3, 3))[1], 12)
    ref = tvnumba.deconvolve_tv_beta(da.from_array(data, chunks=(8, 12, 12)), psf, 0.01,
                                     depth=depth).compute(scheduler="sync").astype(np.float32)
    np.testing.assert_array_equal(got, ref)
    # closer to the scene than the blurred data, and the seams at the solver's tolerance
    assert np.abs(got - clean).mean() < np.abs(data - clean).mean()
    whole = tvnumba.deconvolve_tv_beta(data, psf, 0.01)
    assert np.abs(got - whole).max() < 0.05


def test_chunks_from_the_memory_limit():
    gib = 2**30
    kw = dict(spatial=(0, 1, 2), channel=None, batch=(), itemsize=4,
              depth={0: 16, 1: 16, 2: 16})
    chunks = choose_chunks((400, 600, 600), memory_limit=gib, **kw)
    ext = np.prod([c + 32 for c in chunks])
    assert ext <= memory_budget(gib, 4) and all(c >= 16 for c in chunks)
    # Four times the memory: larger chunks, each still within the budget.
    bigger = choose_chunks((400, 600, 600), memory_limit=4 * gib, **kw)
    assert np.prod(bigger) > np.prod(chunks)
    assert np.prod([c + 32 for c in bigger]) <= memory_budget(4 * gib, 4)
    # Whole input chunks where they divide; the channel axis whole, batch axes one by one.
    got = choose_chunks((3, 2, 400, 600, 600), spatial=(2, 3, 4), channel=1, batch=(0,),
                        itemsize=4, depth={2: 16, 3: 16, 4: 16}, memory_limit=4 * gib,
                        storage=(1, 1, 64, 64, 64))
    assert got[:2] == (1, 2) and all(c % 64 == 0 for c in got[2:])
    # A volume that fits is one chunk, unless several workers want one each.
    assert choose_chunks((40, 60, 60), memory_limit=gib, **kw) == (40, 60, 60)
    assert np.prod([-(-n // c) for n, c in zip((40, 60, 60), choose_chunks(
        (40, 60, 60), memory_limit=gib, workers=4, **kw))]) >= 4
    assert choose_chunks((400, 600, 600), memory_limit=gib, requested=(10, 20, 30),
                         **kw) == (10, 20, 30)
    with pytest.raises(InputError, match="--memory-limit"):
        choose_chunks((400, 600, 600), memory_limit=2**20, **kw)


def test_chunked_store_resumes_only_the_same_run(tmp_path):
    from tvnumba._chunked import ChunkedStore, block_name

    def create(path):
        zarr.create_array(path, shape=(4, 4), chunks=(2, 2), dtype="f4")
        return path

    final = tmp_path / "r.zarr"
    store = ChunkedStore(str(final), {"weight": 0.1})
    assert store.open(create) == set() and not store.restarted
    for index in [(0, 0), (1, 1)]:  # what a worker leaves after writing a chunk
        open(os.path.join(store.target().done, block_name(index)), "w").close()
    assert not store.finish((2, 2)) and not final.exists()  # two chunks missing

    again = ChunkedStore(str(final), {"weight": 0.1})
    assert again.open(create) == {"0.0", "1.1"}
    other = ChunkedStore(str(final), {"weight": 0.2})
    assert other.open(create) == set() and other.restarted
    for index in np.ndindex(2, 2):
        open(os.path.join(other.target().done, block_name(index)), "w").close()
    assert other.finish((2, 2))
    assert sorted(os.listdir(tmp_path)) == ["r.zarr"]
    assert not (final / ".tvnumba-chunks").exists()
