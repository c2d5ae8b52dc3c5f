"""Volumes read lazily from Zarr stores, OME-Zarr images and TIFF files, and the Zarr
or OME-Zarr store a result goes to (``pip install -e ".[io]"``: zarr >= 3, tifffile).

A :class:`Volume` is a small picklable description (paths, shape, dtype, axes, voxel
spacing); :func:`to_dask` turns it into a Dask array whose chunks read their own region
when computed, on whichever worker computes them.  A TIFF is read through tifffile's
Zarr interface (``tifffile.imread(path, aszarr=True)``), page by page, never whole.

OME-Zarr (NGFF 0.4 on Zarr format 2, 0.5 on Zarr format 3): the first multiscale's
full-resolution dataset is the image; its axes say which one holds channels and its
``scale`` transformation gives the voxel spacing.  Results keep the axes and the
transformations, with the spacing that was used.
"""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass, field

import numpy as np

from .io import InputError, is_zarr_store

_TIFF = (".tif", ".tiff")
#: ImageJ / TIFF length units and their UDUNITS-2 names (what OME-Zarr axes carry).
_UNITS = {"um": "micrometer", "µm": "micrometer", "\\u00b5m": "micrometer",
          "micron": "micrometer", "microns": "micrometer", "micrometer": "micrometer",
          "nm": "nanometer", "nanometer": "nanometer", "mm": "millimeter",
          "millimeter": "millimeter", "cm": "centimeter", "m": "meter"}


@dataclass(frozen=True)
class Volume:
    """An image or volume on disk, described without reading its pixels.

    ``kind`` is ``"zarr"``, ``"ome-zarr"`` or ``"tiff"``; ``array`` the path of the
    Zarr array (for OME-Zarr, its full-resolution dataset) or of the TIFF file.
    ``axes`` follows OME-Zarr (``name``, ``type``, optional ``unit``), ``transforms`` is
    the dataset's list of coordinate transformations (empty when the file has none).
    """

    path: str
    kind: str
    array: str
    shape: tuple[int, ...]
    dtype: np.dtype
    storage_chunks: tuple[int, ...]
    axes: tuple[dict, ...]
    transforms: tuple[dict, ...] = ()
    ome_version: str | None = None
    zarr_format: int = 3
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def channel_axis(self) -> int | None:
        found = [i for i, a in enumerate(self.axes) if a.get("type") == "channel"]
        return found[0] if found else None

    @property
    def batch_axes(self) -> tuple[int, ...]:
        """Axes that are neither spatial nor channels (an OME-Zarr time axis)."""
        return tuple(i for i, a in enumerate(self.axes)
                     if a.get("type") not in ("space", "channel"))

    @property
    def spacing(self) -> tuple[float, ...] | None:
        """The voxel size along the spatial axes, from the metadata (None: unknown)."""
        scale = _scale(self.transforms, len(self.shape))
        if scale is None:
            return None
        values = tuple(float(scale[i]) for i, a in enumerate(self.axes)
                       if a.get("type") == "space")
        if all(np.isfinite(v) and v > 0 for v in values):
            return values
        return None


def _scale(transforms, ndim):
    for t in transforms:
        if t.get("type") == "scale" and len(t.get("scale", ())) == ndim:
            return t["scale"]
    return None


def _zarr():
    try:
        import zarr
    except ImportError:
        raise InputError('reading Zarr needs the zarr package (pip install -e ".[io]" '
                         'from a checkout; Python >= 3.11)') from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise InputError(f"reading Zarr needs zarr >= 3, found {zarr.__version__}")
    return zarr


def is_volume_path(path: str) -> bool:
    """A Zarr store (always read lazily)."""
    return is_zarr_store(path)


def output_stem(path: str) -> str:
    """The input's name without its extension(s): ``a.ome.zarr`` → ``a``."""
    name = os.path.basename(os.path.normpath(path))
    for ext in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


def open_volume(path: str) -> Volume:
    """Describe the volume at ``path`` (a Zarr array, an OME-Zarr image or a TIFF file);
    :class:`InputError` says why it cannot be used."""
    if path.lower().endswith(_TIFF) and os.path.isfile(path):
        return _open_tiff(path)
    if not is_zarr_store(path):
        raise InputError("not a Zarr store or TIFF file")
    zarr = _zarr()
    try:
        node = zarr.open(store=path, mode="r")
    except Exception as e:  # a damaged store: its reader's reason
        raise InputError(f"cannot open as Zarr ({_first_line(e)})") from None
    zarr_format = int(node.metadata.zarr_format)
    if isinstance(node, zarr.Array):
        names = getattr(node.metadata, "dimension_names", None) or ()
        return Volume(path=path, kind="zarr", array=path, shape=tuple(node.shape),
                      dtype=np.dtype(node.dtype), storage_chunks=tuple(node.chunks),
                      axes=_plain_axes(len(node.shape), names), zarr_format=zarr_format,
                      name=output_stem(path))
    attrs = dict(node.attrs)
    ome = attrs.get("ome") if isinstance(attrs.get("ome"), dict) else None
    multiscales = (ome or attrs).get("multiscales")
    if not multiscales:
        raise InputError("a Zarr group without OME-Zarr multiscales: give the path of one "
                         "of its arrays")
    ms = multiscales[0]
    version = str((ome or {}).get("version") or ms.get("version") or "0.4")
    try:
        dataset = ms["datasets"][0]
        array_path = os.path.join(path, dataset["path"])
        arr = zarr.open_array(store=array_path, mode="r")
    except Exception as e:  # metadata that names no readable array
        raise InputError(f"OME-Zarr image without a readable dataset ({_first_line(e)})") \
            from None
    ndim = len(arr.shape)
    axes = tuple(_axis(a) for a in ms.get("axes", ())) or _plain_axes(ndim, ())
    if len(axes) != ndim:
        raise InputError(f"OME-Zarr axes {[a['name'] for a in axes]} do not match the "
                         f"dataset's {ndim} dimensions")
    transforms = list(dataset.get("coordinateTransformations", ()))
    for t in ms.get("coordinateTransformations", ()):  # a global scale applies on top
        if t.get("type") == "scale":
            own = _scale(transforms, ndim)
            if own is not None and len(t.get("scale", ())) == ndim:
                merged = [float(a) * float(b) for a, b in zip(own, t["scale"])]
                transforms = [dict(x, scale=merged) if x.get("type") == "scale" else x
                              for x in transforms]
    if len([a for a in axes if a["type"] not in ("space", "channel")]) > 1:
        raise InputError("more than one axis that is neither space nor channel")
    return Volume(path=path, kind="ome-zarr", array=array_path, shape=tuple(arr.shape),
                  dtype=np.dtype(arr.dtype), storage_chunks=tuple(arr.chunks), axes=axes,
                  transforms=tuple(transforms), ome_version=version,
                  zarr_format=int(arr.metadata.zarr_format), name=ms.get("name") or "",
                  extra={"multiscale_type": ms.get("type"), "zarr_format_group": zarr_format})


def _axis(a) -> dict:
    if isinstance(a, str):  # NGFF 0.3: names only
        kind = {"t": "time", "c": "channel"}.get(a, "space")
        return {"name": a, "type": kind}
    return dict(a)


def _plain_axes(ndim: int, names) -> tuple[dict, ...]:
    names = list(names) if names and all(names) else list("tczyx"[-ndim:] if ndim <= 5
                                                          else [f"d{i}" for i in range(ndim)])
    return tuple({"name": str(n), "type": "space"} for n in names)


def _open_tiff(path: str) -> Volume:
    from .io import read_tiff_meta

    shape, dtype, meta = read_tiff_meta(path)
    ndim = len(shape)
    rgb = ndim == 3 and shape[-1] in (3, 4)
    if rgb:
        axes = ({"name": "y", "type": "space"}, {"name": "x", "type": "space"},
                {"name": "c", "type": "channel"})
    else:
        axes = _plain_axes(ndim, ())
    unit = _UNITS.get(str(meta.unit or "").strip().lower())
    if unit:
        axes = tuple(dict(a, unit=unit) if a["type"] == "space" else a for a in axes)
    transforms = ()
    spacing = meta.spacing(ndim)
    if spacing is not None:
        transforms = ({"type": "scale", "scale": list(spacing)},)
    page = shape[-3:] if rgb else shape[-2:]
    storage = (1,) * (ndim - len(page)) + tuple(page)
    return Volume(path=path, kind="tiff", array=path, shape=shape, dtype=dtype,
                  storage_chunks=storage, axes=axes, transforms=transforms,
                  name=output_stem(path), extra={"meta": meta})


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


# ------------------------------------------------------------------------- reading
_tiff_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _tiff_array(path: str, mtime_ns: int):
    """The TIFF's first series as a read-only Zarr array, opened once per process
    (parsing a stack of many pages takes a while); keyed by the file's mtime."""
    import tifffile

    zarr = _zarr()
    store = tifffile.imread(path, aszarr=True)
    return zarr.open_array(store=store, mode="r")


class _Reader:
    """What :func:`dask.array.from_array` slices: reads one region when asked."""

    def __init__(self, volume: Volume):
        self.volume = volume
        self.shape = volume.shape
        self.dtype = volume.dtype
        self.ndim = len(volume.shape)

    def __getitem__(self, region):
        v = self.volume
        if v.kind == "tiff":
            arr = _tiff_array(v.array, os.stat(v.array).st_mtime_ns)
            with _tiff_lock:  # one open file handle per process
                return np.asarray(arr[region])
        return np.asarray(_zarr().open_array(store=v.array, mode="r")[region])


def to_dask(volume: Volume, chunks):
    """The volume as a lazy Dask array in ``chunks``; each chunk is read where it is
    computed."""
    import dask.array as da
    from dask.base import tokenize

    token = tokenize(volume.path, volume.array, volume.shape, str(volume.dtype), chunks,
                     _signature(volume.path))
    return da.from_array(_Reader(volume), chunks=chunks, lock=False, fancy=False,
                         asarray=False, name=f"tvnumba-read-{token}",
                         meta=np.empty((0,) * len(volume.shape), volume.dtype))


def _signature(path: str) -> tuple:
    """What changes when the input is rewritten: size and mtime of the file or of the
    store's metadata documents."""
    if os.path.isfile(path):
        st = os.stat(path)
        return (st.st_size, st.st_mtime_ns)
    out = []
    for root, _, files in os.walk(path):
        for f in files:
            if f in ("zarr.json", ".zarray", ".zattrs", ".zgroup"):
                st = os.stat(os.path.join(root, f))
                out.append((os.path.relpath(os.path.join(root, f), path), st.st_mtime_ns))
        if len(out) > 64:  # metadata lies near the top; the chunks need not be listed
            break
    return tuple(sorted(out))


def input_signature(path: str) -> list:
    """:func:`_signature` as JSON-friendly lists (the resume record compares it)."""
    return [list(x) if isinstance(x, tuple) else x for x in _signature(path)]


# ------------------------------------------------------------------------- writing
def output_axes(volume: Volume, spacing) -> tuple[tuple[dict, ...], list[dict]]:
    """Axes and transformations of the result: the input's, with ``spacing`` (one value
    per spatial axis, or None to keep the input's) as the scale of the spatial axes."""
    ndim = len(volume.shape)
    scale = list(_scale(volume.transforms, ndim) or [1.0] * ndim)
    if spacing is not None:
        values = list(np.broadcast_to(np.asarray(spacing, float),
                                      (sum(a["type"] == "space" for a in volume.axes),)))
        k = 0
        for i, a in enumerate(volume.axes):
            if a["type"] == "space":
                scale[i] = float(values[k])
                k += 1
    transforms = [t for t in volume.transforms if t.get("type") != "scale"]
    return volume.axes, [{"type": "scale", "scale": scale}] + transforms


def ome_problem(volume: Volume) -> str | None:
    """Why the volume's axes cannot be written as OME-Zarr (None: they can)."""
    order = {"time": 0, "channel": 1, "space": 2}
    ranks = [order.get(a["type"], 0) for a in volume.axes]
    if ranks != sorted(ranks):
        return "OME-Zarr needs time, then channel, then spatial axes; use --channel-axis " \
               "or write plain Zarr"
    if not 2 <= sum(r == 2 for r in ranks) <= 3:
        return "OME-Zarr needs 2 or 3 spatial axes"
    return None


def create_output(path: str, *, shape, chunks, dtype, volume: Volume, ome: bool,
                  spacing, attributes: dict) -> str:
    """Create the (empty) result store at ``path``; returns the path of its array.

    Plain Zarr: one array in the input's Zarr format (3 for TIFF).  OME-Zarr: a group
    with one full-resolution dataset ``0``, NGFF 0.5 on Zarr format 3, or 0.4 on format
    2 when the input is 0.4.
    """
    zarr = _zarr()
    if not ome:
        fmt = volume.zarr_format if volume.kind == "zarr" else 3
        kw = {}
        if fmt == 3:
            kw["dimension_names"] = [a["name"] for a in volume.axes]
        zarr.create_array(store=path, shape=shape, chunks=chunks, dtype=dtype,
                          zarr_format=fmt, fill_value=0, attributes=attributes, **kw)
        return path
    version = "0.4" if volume.ome_version == "0.4" else "0.5"
    fmt = 2 if version == "0.4" else 3
    axes, transforms = output_axes(volume, spacing)
    ms = {"axes": [dict(a) for a in axes],
          "datasets": [{"path": "0", "coordinateTransformations": transforms}],
          "name": volume.name or output_stem(volume.path)}
    if version == "0.4":
        ms = {"version": "0.4", **ms}
        group_attrs = {"multiscales": [ms], **attributes}
    else:
        group_attrs = {"ome": {"version": "0.5", "multiscales": [ms]}, **attributes}
    group = zarr.open_group(store=path, mode="w", zarr_format=fmt, attributes=group_attrs)
    kw = {"dimension_names": [a["name"] for a in axes]} if fmt == 3 else {}
    group.create_array("0", shape=shape, chunks=chunks, dtype=dtype, fill_value=0, **kw)
    return os.path.join(path, "0")


def write_region(array_path: str, region, block: np.ndarray) -> None:
    """Write ``block`` into ``region`` of the Zarr array at ``array_path``."""
    _zarr().open_array(store=array_path, mode="r+")[region] = block


def is_ome_zarr(path: str) -> bool:
    """Whether the Zarr store at ``path`` is an OME-Zarr image (read from its JSON
    metadata, without importing zarr)."""
    import json

    for name, key in (("zarr.json", "attributes"), (".zattrs", None)):
        try:
            with open(os.path.join(path, name)) as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue
        attrs = doc.get(key, {}) if key else doc
        if not isinstance(attrs, dict):
            continue
        ome = attrs.get("ome")
        if (isinstance(ome, dict) and ome.get("multiscales")) or attrs.get("multiscales"):
            return True
    return False
