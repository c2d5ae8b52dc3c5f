"""Image files for the command line: finding, reading, and writing them atomically.

TIFF goes through :mod:`tifffile` (a multi-page file is one stack: a 3-D volume, or a
batch of 2-D images), everything else (PNG, JPEG, BMP) through :mod:`imageio`.  Both
are the ``io`` extra (``pip install -e ".[io]"`` from a checkout).  Zarr stores are
found here and read lazily by :mod:`tvnumba._zarr_io`.

Outputs are written to a temporary file in the output folder, then moved into place
with :func:`os.replace` (atomic on POSIX and Windows within one file system), so a run
killed at any moment leaves complete outputs and, at worst, temporaries whose names
:func:`clear_stale_temporaries` recognises.
"""

from __future__ import annotations

import glob
import math
import os
import re
import socket
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageMeta",
    "InputError",
    "expand_inputs",
    "is_zarr_store",
    "image_props",
    "read_image",
    "read_tiff_meta",
    "write_tiff_atomic",
    "temporary_name",
    "clear_stale_temporaries",
    "to_input_dtype",
]

#: What a directory given as input contributes (case-insensitive).
IMAGE_EXTENSIONS = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
_TIFF = (".tif", ".tiff")
_TMP_SUFFIX = ".tvnumba-tmp"
# .<output name>.<host>.<pid>.tvnumba-tmp -- host and pid say whether the writer may
# still be alive (several SLURM tasks can share one output folder).
_TMP_RE = re.compile(r"^\.(?P<out>.+)\.(?P<host>[^.]*)\.(?P<pid>\d+)"
                     + re.escape(_TMP_SUFFIX) + "$")


class InputError(Exception):
    """A file that is not a usable image: reported in one line naming the file."""


@dataclass
class ImageMeta:
    """What is carried from an input file to its output.

    ``resolution`` is the TIFF (X, Y) resolution in pixels per ``unit`` (or ``None``),
    ``z_spacing`` the ImageJ/tifffile slice spacing (or ``None``).
    """

    resolution: tuple[float, float] | None = None
    resolution_unit: int | None = None
    z_spacing: float | None = None
    unit: str | None = None
    imagej: bool = False
    extra: dict = field(default_factory=dict)

    def spacing(self, ndim: int) -> tuple[float, ...] | None:
        """Grid spacing of a ``ndim``-D grayscale volume from the metadata, if any.

        Only for 3-D volumes (Z, Y, X): the pixel size is ``1 / resolution`` and the
        slice spacing is ImageJ's ``spacing``; both must be known.  2-D images keep
        spacing 1 (their X/Y resolution is nearly always a print size).
        """
        if ndim != 3 or self.z_spacing is None or self.resolution is None:
            return None
        xres, yres = self.resolution
        values = (self.z_spacing, 1.0 / yres, 1.0 / xres)
        if all(math.isfinite(v) and v > 0 for v in values):
            return values
        return None


def _is_image_name(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def is_zarr_store(path: str) -> bool:
    """Whether ``path`` is a Zarr array or group (format 2 or 3) on the file system."""
    return os.path.isdir(path) and any(
        os.path.isfile(os.path.join(path, name)) for name in ("zarr.json", ".zarray", ".zgroup"))


def expand_inputs(items) -> list[tuple[str, str | None]]:
    """Files, Zarr stores, directories (their image files and Zarr stores, not
    recursive) and glob patterns.

    Returns ``(path, problem)`` pairs in the order given (sorted within a directory
    or pattern), without duplicates; ``problem`` is a one-line reason when the item
    names nothing usable (it is then reported as a failed input, and the rest runs).
    """
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(path: str, problem: str | None = None) -> None:
        key = os.path.abspath(path)
        if key not in seen:
            seen.add(key)
            out.append((path, problem))

    for item in items:
        if is_zarr_store(item):
            add(item)
        elif os.path.isdir(item):
            files = []
            for n in sorted(os.listdir(item)):
                path = os.path.join(item, n)
                if n.startswith("."):
                    continue
                if (_is_image_name(n) and os.path.isfile(path)) or is_zarr_store(path):
                    files.append(path)
            if not files:
                add(item, "directory holds no image file (" + ", ".join(IMAGE_EXTENSIONS)
                      + ") or Zarr store")
            for f in files:
                add(f)
        elif os.path.exists(item):
            add(item)
        elif glob.has_magic(item):
            matches = sorted(m for m in glob.glob(item)
                             if os.path.isfile(m) or is_zarr_store(m))
            if not matches:
                add(item, "no file matches this pattern")
            for m in matches:
                add(m)
        else:
            add(item, "no such file")
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def read_image(path: str) -> tuple[np.ndarray, ImageMeta]:
    """The image at ``path`` and its metadata, or :class:`InputError` saying why not."""
    if not os.path.exists(path):
        raise InputError("no such file")
    if os.path.isdir(path):
        raise InputError("is a directory, not an image file")
    if os.path.getsize(path) == 0:
        raise InputError("empty file, not an image")
    meta = ImageMeta()
    try:
        if path.lower().endswith(_TIFF):
            img, meta = _read_tiff(path)
        else:
            import imageio.v3 as iio

            img = iio.imread(path)
    except InputError:
        raise
    except Exception as e:  # any reader's failure on a bad file: corrupt, unknown format
        raise InputError(f"cannot read as an image ({_first_line(e)})") from None
    img = np.asarray(img)
    if img.size == 0 or img.dtype.kind not in "biuf":
        raise InputError(f"not an image: read an array of shape {img.shape}, dtype {img.dtype}")
    return img, meta


def _read_tiff(path: str) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return tif.series[0].asarray(), _tiff_meta(tif)


def _tiff_meta(tif) -> ImageMeta:
    page = tif.pages[0]
    meta = ImageMeta()
    tags = page.tags
    if "XResolution" in tags and "YResolution" in tags:
        x = _rational(tags["XResolution"].value)
        y = _rational(tags["YResolution"].value)
        # (1, 1) is what writers put when they know nothing.
        if x and y and (x, y) != (1.0, 1.0):
            meta.resolution = (x, y)
            if "ResolutionUnit" in tags:
                meta.resolution_unit = int(tags["ResolutionUnit"].value)
    ij = tif.imagej_metadata
    if ij:
        meta.imagej = True
        meta.unit = ij.get("unit")
        meta.z_spacing = _positive(ij.get("spacing"))
    else:
        shaped = tif.shaped_metadata
        if shaped:
            meta.z_spacing = _positive(shaped[0].get("spacing"))
            meta.unit = shaped[0].get("unit")
    return meta


def read_tiff_meta(path: str) -> tuple[tuple[int, ...], np.dtype, ImageMeta]:
    """Shape, dtype and metadata of a TIFF's first series, without reading its pixels;
    :class:`InputError` when it is not a readable TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape), np.dtype(series.dtype), _tiff_meta(tif)
    except Exception as e:  # any reader's failure on a bad file
        raise InputError(f"cannot read as a TIFF ({_first_line(e)})") from None


def image_props(path: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an image file, from its header where the format allows;
    :class:`InputError` when it cannot be read."""
    if path.lower().endswith(_TIFF):
        shape, dtype, _ = read_tiff_meta(path)
        return shape, dtype
    try:
        import imageio.v3 as iio

        props = iio.improps(path)
        return tuple(props.shape), np.dtype(props.dtype)
    except Exception as e:  # unreadable: the task reports it in full later
        raise InputError(f"cannot read as an image ({_first_line(e)})") from None


def _rational(value) -> float | None:
    try:
        num, den = value
        v = float(num) / float(den)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def _positive(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def temporary_name(output: str) -> str:
    """The temporary file next to ``output`` that this process writes first."""
    folder, name = os.path.split(output)
    host = socket.gethostname().split(".")[0].replace(".", "_")
    return os.path.join(folder, f".{name}.{host}.{os.getpid()}{_TMP_SUFFIX}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    # A killed process stays a zombie until its parent (or init) reaps it; it writes
    # nothing more, so its temporaries are stale.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def clear_stale_temporaries(folder: str, outputs=None) -> list[str]:
    """Delete the temporaries a killed run left in ``folder``; returns their paths.

    Only files named by :func:`temporary_name` are touched, and only those whose
    writer is gone: a temporary of this host whose process no longer runs, or --
    since nothing tells whether a process on another node runs -- one whose output
    is in ``outputs`` (the output names this run will write; a SLURM array splits the
    inputs, so no other task writes them).  ``outputs=None``: every dead writer's.
    """
    host = socket.gethostname().split(".")[0]
    wanted = None if outputs is None else {os.path.basename(o) for o in outputs}
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TMP_RE.match(name)
        if not m:
            continue
        pid = int(m["pid"])
        if m["host"] == host:
            if pid == os.getpid() or _pid_alive(pid):
                continue
        elif wanted is None or m["out"] not in wanted:
            continue
        path = os.path.join(folder, name)
        try:
            os.remove(path)
            removed.append(path)
        except FileNotFoundError:  # another run cleared it first
            pass
    return removed


def write_tiff_atomic(path: str, data: np.ndarray, meta: ImageMeta | None = None,
                      spacing: tuple[float, ...] | None = None, rgb: bool = False) -> None:
    """Write ``data`` as a TIFF at ``path`` atomically, carrying ``meta`` over.

    ``spacing`` (3-D volumes: Z, Y, X) is written back as ImageJ ``spacing`` and X/Y
    resolution when given.  ImageJ-format files stay ImageJ when the data allow it
    (grayscale uint8/uint16/float32).  ``rgb``: the last axis holds colour samples
    (else every axis is a grid axis, stored as grayscale pages).
    """
    import tifffile

    meta = meta or ImageMeta()
    kwargs: dict = {"photometric": "rgb" if rgb else "minisblack"}
    resolution = meta.resolution
    z = meta.z_spacing
    if spacing is not None and len(spacing) == 3:
        z, dy, dx = spacing
        resolution = (1.0 / dx, 1.0 / dy)
    if resolution is not None:
        kwargs["resolution"] = resolution
        if meta.resolution_unit is not None:
            kwargs["resolutionunit"] = meta.resolution_unit
    imagej = (meta.imagej and not rgb and data.dtype in (np.uint8, np.uint16, np.float32)
              and data.ndim in (2, 3))
    md: dict = {}
    if z is not None:
        md["spacing"] = z
    if meta.unit:
        md["unit"] = meta.unit
    if imagej:
        md["axes"] = "YX" if data.ndim == 2 else "ZYX"
        kwargs["imagej"] = True
    kwargs["metadata"] = md
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as fh:
            tifffile.imwrite(fh, data, **kwargs)
            fh.flush()
            os.fsync(fh.fileno())  # the data is on disk before the name says it is done
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise


def to_input_dtype(u: np.ndarray, dtype, *, counts: bool = False) -> np.ndarray:
    """The denoised float image ``u`` back in the input's ``dtype``.

    The inverse of :func:`skimage.util.img_as_float`, clipped: unsigned integers
    ``round(clip(u, 0, 1) · max)``, signed ``round(clip(u, -1, 1) · max)`` (``max`` of
    the integer type), bool ``u >= 0.5``; float types are cast.  With ``counts``
    (photon counts, never scaled) integers are ``round(u)`` clipped to the type's range.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return u.astype(dtype)
    if counts and dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.rint(np.clip(u, info.min, info.max)).astype(dtype)
    if dtype.kind == "b":
        return u >= 0.5
    info = np.iinfo(dtype)
    lo = 0.0 if dtype.kind == "u" else -1.0
    return np.rint(np.clip(u, lo, 1.0) * info.max).astype(dtype)
