"""Image files and Zarr stores for the command line (tvnumba.io, tvnumba._zarr_io)."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest

tifffile = pytest.importorskip("tifffile")
iio = pytest.importorskip("imageio.v3")

from tvnumba.io import (  # noqa: E402
    clear_stale_temporaries,
    expand_inputs,
    image_props,
    is_zarr_store,
    read_tiff_meta,
    temporary_name,
)


def _zarr():
    return pytest.importorskip("zarr", minversion="3")


def write_ome(path, data, axes, scale, version="0.5", chunks=None):
    """An OME-Zarr image with one full-resolution dataset ``0`` (NGFF 0.4 or 0.5)."""
    zarr = _zarr()
    ms = {"axes": [{"name": n, "type": t} for n, t in axes],
          "datasets": [{"path": "0", "coordinateTransformations":
                        [{"type": "scale", "scale": list(scale)}]}], "name": "img"}
    if version == "0.4":
        g = zarr.open_group(str(path), mode="w", zarr_format=2,
                            attributes={"multiscales": [dict(ms, version="0.4")]})
    else:
        g = zarr.open_group(str(path), mode="w", zarr_format=3,
                            attributes={"ome": {"version": "0.5", "multiscales": [ms]}})
    g.create_array("0", data=data, chunks=chunks or data.shape)
    return path


def test_expand_inputs_finds_images_and_zarr_stores(tmp_path):
    zarr = _zarr()
    for name in ("b.png", "a.TIF", "c.bmp", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    zarr.create_array(str(tmp_path / "v.zarr"), shape=(4, 4), dtype="f4")
    (tmp_path / "plain").mkdir()
    got = expand_inputs([str(tmp_path)])
    assert [os.path.basename(p) for p, _ in got] == ["a.TIF", "b.png", "c.bmp", "v.zarr"]
    assert all(problem is None for _, problem in got)
    # A store given by name is one input, not a folder of files.
    assert expand_inputs([str(tmp_path / "v.zarr")]) == [(str(tmp_path / "v.zarr"), None)]
    assert is_zarr_store(str(tmp_path / "v.zarr")) and not is_zarr_store(str(tmp_path))
    (path, problem), = expand_inputs([str(tmp_path / "plain")])
    assert "no image file" in problem
    (path, problem), = expand_inputs([str(tmp_path / "nothing*.png")])
    assert problem == "no file matches this pattern"


def test_headers_without_pixels(tmp_path):
    vol = np.zeros((3, 5, 6), np.uint16)
    tifffile.imwrite(tmp_path / "v.tif", vol, imagej=True, resolution=(2.0, 2.0),
                     metadata={"spacing": 1.5, "unit": "um", "axes": "ZYX"})
    shape, dtype, meta = read_tiff_meta(str(tmp_path / "v.tif"))
    assert shape == (3, 5, 6) and dtype == np.uint16
    assert meta.spacing(3) == (1.5, 0.5, 0.5)
    iio.imwrite(tmp_path / "rgb.png", np.zeros((7, 8, 3), np.uint8))
    assert image_props(str(tmp_path / "rgb.png")) == ((7, 8, 3), np.uint8)


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


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_zombie_writer_is_stale(tmp_path):
    # A killed writer is a zombie until reaped: its pid answers signals but it
    # writes nothing more, so its temporary goes.
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "30"])
    try:
        child.kill()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # not reaped: Popen.wait is not called
            with open(f"/proc/{child.pid}/stat", "rb") as fh:
                if fh.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    break
            time.sleep(0.01)
        host = socket.gethostname().split(".")[0]
        tmp = tmp_path / f".z.tif.{host}.{child.pid}.tvnumba-tmp"
        tmp.touch()
        assert clear_stale_temporaries(str(tmp_path)) == [str(tmp)]
        assert not tmp.exists()
    finally:
        child.wait()


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_open_ome_zarr(tmp_path, version):
    from tvnumba._zarr_io import is_ome_zarr, open_volume, output_stem

    data = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    path = write_ome(tmp_path / "cells.ome.zarr", data,
                     [("c", "channel"), ("z", "space"), ("y", "space"), ("x", "space")],
                     [1.0, 2.0, 0.5, 0.25], version=version, chunks=(1, 3, 2, 5))
    assert is_ome_zarr(str(path)) and output_stem(str(path)) == "cells"
    v = open_volume(str(path))
    assert v.kind == "ome-zarr" and v.ome_version == version
    assert v.shape == data.shape and v.dtype == np.uint16
    assert v.storage_chunks == (1, 3, 2, 5)
    assert v.channel_axis == 0 and v.spacing == (2.0, 0.5, 0.25)


def test_read_regions_lazily(tmp_path):
    """The Dask array reads each chunk from the store where it is computed: Zarr, and a
    TIFF through tifffile's Zarr interface."""
    from tvnumba._zarr_io import open_volume, to_dask

    zarr = _zarr()
    data = np.random.default_rng(0).random((5, 12, 10)).astype(np.float32)
    zarr.create_array(str(tmp_path / "v.zarr"), data=data, chunks=(2, 6, 5))
    tifffile.imwrite(tmp_path / "v.tif", data, photometric="minisblack")
    for name in ("v.zarr", "v.tif"):
        v = open_volume(str(tmp_path / name))
        x = to_dask(v, (3, 5, 4))
        assert x.chunks == ((3, 2), (5, 5, 2), (4, 4, 2))
        np.testing.assert_array_equal(x.compute(scheduler="sync"), data)
        np.testing.assert_array_equal(x[1:4, 3:9, 2:7].compute(scheduler="sync"),
                                      data[1:4, 3:9, 2:7])


def test_bad_stores_are_input_errors(tmp_path):
    from tvnumba._zarr_io import open_volume
    from tvnumba.io import InputError

    zarr = _zarr()
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    with pytest.raises(InputError, match="without OME-Zarr multiscales"):
        open_volume(str(tmp_path / "g.zarr"))
    (tmp_path / "x.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(InputError, match="cannot read as a TIFF"):
        open_volume(str(tmp_path / "x.tif"))
