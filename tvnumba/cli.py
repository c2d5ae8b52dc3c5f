"""The ``tvnumba`` command.

``tvnumba demo``
    Runs the demo on a scikit-image sample image (``tvnumba demo --help``).
``tvnumba tv FILE [FILE ...]``
    Prints the β-TV of image files (a table, or one JSON line per file with ``--json``).
``tvnumba denoise INPUT [INPUT ...] -o OUTDIR``
    Denoises image files, folders of them or glob patterns into ``OUTDIR`` (float32
    TIFF), in a process pool with ``--jobs``; atomic writes, re-runs skip finished files.
    Zarr stores, OME-Zarr images and TIFFs too large to read whole go through Dask
    chunk by chunk into ``OUTDIR/<stem><suffix>.zarr``, and a re-run resumes them.
``tvnumba deconvolve INPUT [INPUT ...] --psf PSF -o OUTDIR``
    The same batch, deconvolving each image with the point-spread function in ``PSF``
    (:func:`tvnumba.deconvolve_tv_beta`).
``tvnumba inpaint INPUT [INPUT ...] --mask MASK -o OUTDIR``
    The same batch, filling the pixels that ``MASK`` marks (nonzero = missing) with
    :func:`tvnumba.inpaint_tv_beta`.
``tvnumba warm``
    Compiles the kernels of the common cases into Numba's cache (``NUMBA_CACHE_DIR``).
``tvnumba --version``
    Prints the version.

Exit status
-----------
0
    Every input succeeded (or was skipped because its output exists).
1
    At least one input failed: each failure was reported on stderr in one line
    ``tvnumba <command>: error: <file>: <reason>``, and the other inputs still ran.
2
    Usage error: a bad option or value, or options that no input can satisfy, reported
    once before any work; or an output folder that cannot be created or written.
130
    Interrupted (Ctrl-C); finished outputs are complete, temporaries are cleared by
    the next run, and chunked outputs resume from their finished chunks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

_EXIT_DOC = """\
exit status:
  0  every input succeeded (or was skipped: its output exists)
  1  some inputs failed (one line each on stderr); the others still ran
  2  usage error (bad option or value, unusable output folder), before any work"""

_LISTS_DOC = """\
List values (--spacing, --axes, --chunks, --depth) are numbers separated by commas
(--spacing 2,0.5,0.5) or by spaces up to the first argument that is not a number
(--spacing 2 0.5 0.5 vol.tif)."""

_TV_EPILOG = """\
examples:
  tvnumba tv image.png
  tvnumba tv --beta 0.5 --smoothing 0.01 a.tif b.tif
  tvnumba tv --spacing 2,0.5,0.5 volume.tif        # Z, Y, X spacing
  tvnumba tv --axes 1,2 stack.tif --reduction mean  # axis 0 is a batch axis
  tvnumba tv --json a.tif b.tif > tv.jsonl

""" + _LISTS_DOC + "\n\n" + _EXIT_DOC

_DENOISE_EPILOG = """\
examples:
  tvnumba denoise noisy.png -o out/                 # out/noisy.tif (float32)
  tvnumba denoise data/ -o out/ --weight 0.05 --beta 0.5 --jobs 2
  tvnumba denoise 'raw/*.tif' -o out/ --like-input --suffix _tv
  tvnumba denoise stack.tif -o out/ --as-batch      # each page on its own
  tvnumba denoise vol.tif -o out/ --spacing 2,0.5,0.5 --json > log.jsonl
  tvnumba denoise vol.zarr -o out/                  # out/vol.zarr, chunk by chunk
  tvnumba denoise cells.ome.zarr -o out/ --workers 2 --memory-limit 2GB
  tvnumba denoise big.tif -o out/ --zarr --chunks 64,256,256 --depth 32

inputs:
  files, Zarr stores, folders (their .tif/.tiff/.png/.jpg/.jpeg/.bmp files and Zarr
  stores, not recursive) and glob patterns (quote them to let tvnumba expand them).
  TIFF through tifffile (a multi-page file is one 3-D volume, or with --as-batch a
  stack of 2-D images), the rest through imageio.  Integer images are scaled to
  [0, 1] ([-1, 1] if signed) as by skimage.util.img_as_float; RGB(A) images get
  --channel-axis -1 by default.  A 3-D TIFF with ImageJ spacing and X/Y resolution
  gets that spacing unless --spacing is given, and it is written back.

outputs:
  OUTDIR/<input stem><suffix>.tif, float32, or with --like-input in the input's
  dtype: integers as round(clip(u, 0, 1) * max) (signed: clip to [-1, 1]), the
  inverse of img_as_float.  Each file is written to a temporary name in OUTDIR and
  renamed when complete, so a killed run leaves only complete outputs; the next run
  skips inputs whose output exists (unless --overwrite) and deletes the temporaries
  the killed run left.

volumes (Zarr, OME-Zarr, and TIFFs with --zarr, any option below, or too large for
memory):
  read lazily and denoised by tvnumba.denoise_tv_beta on the Dask array, chunk by
  chunk with a halo of --depth voxels, on a dask.distributed cluster: --scheduler
  ADDRESS, or a local one of --workers processes (one chunk at a time each, --threads
  threads, --memory-limit bytes).  --chunks defaults to the input's chunks, or to
  the largest that a worker's memory holds.  The result OUTDIR/<stem><suffix>.zarr
  (.ome.zarr for OME-Zarr inputs and with --ome-zarr, with the voxel spacing) is
  built under a hidden name and renamed when every chunk is written; a killed run
  leaves it for the next run, which computes only the missing chunks.  --json
  records carry chunks_total and chunks_skipped (finished by an earlier run).

job arrays:
  --shard K/N keeps the inputs K, K+N, K+2N, ... (0-based) of the full list, after
  every input's output name was checked against the others'.

""" + _LISTS_DOC + "\n\n" + _EXIT_DOC


_DECONVOLVE_EPILOG = """\
examples:
  tvnumba deconvolve blurred.tif --psf psf.tif -o out/          # out/blurred.tif (float32)
  tvnumba deconvolve data/ --psf psf.tif -o out/ --weight auto --jobs 2
  tvnumba deconvolve stack.tif --psf psf3d.tif -o out/ --spacing 2,0.5,0.5
  tvnumba deconvolve vol.zarr --psf psf3d.tif -o out/ --workers 2   # out/vol.zarr

The PSF is read like the inputs (TIFF or PNG/JPEG), as floats, and normalised to sum 1;
it needs as many axes as the images' spatial axes.  --boundary extend (the default)
solves for the scene on the full support of the blur, so real images do not ring at the
border; periodic is the circular model.  Images are read whole; Zarr, OME-Zarr and
large TIFF volumes go chunk by chunk through Dask as for tvnumba denoise, each chunk
deconvolved with a halo (default: the denoising halo plus the PSF's extent; --depth),
--boundary extend only.  Inputs, outputs, atomic writes, re-runs, --jobs and --shard as
for tvnumba denoise (tvnumba denoise --help).

""" + _LISTS_DOC + "\n\n" + _EXIT_DOC


_INPAINT_EPILOG = """\
examples:
  tvnumba inpaint damaged.png --mask scratches.png -o out/        # out/damaged.tif
  tvnumba inpaint frames/ --mask dead_pixels.tif -o out/ --beta 1.5 --jobs 2

The mask is read like the inputs; nonzero pixels are missing (as the mask of
skimage.restoration.inpaint_biharmonic).  It has the images' spatial shape (one mask for
every channel) or their full shape.  The known pixels are kept exactly.  Inputs, outputs,
atomic writes, re-runs, --jobs and --shard as for tvnumba denoise (tvnumba denoise --help).

""" + _LISTS_DOC + "\n\n" + _EXIT_DOC


_WARM_EPILOG = """\
examples:
  tvnumba warm                                      # denoise, beta 1: float32/64, 2-D, RGB, 3-D
  tvnumba warm --command deconvolve,inpaint --beta 1,1.5 --dtype float64 --ndim 2
  tvnumba warm --command deconvolve --noise poisson --ndim 3   # photon counts, volumes

Numba compiles each kernel the first time a process needs it and keeps the machine code
in its cache: NUMBA_CACHE_DIR if set, else the __pycache__ folders next to tvnumba's
modules (or ~/.cache/numba where those are read-only).  Run this once after installing,
in a container build, or at the start of a job script, so that the runs that follow load
the kernels instead of compiling them.  On a cluster, point NUMBA_CACHE_DIR at a folder
every node can read and write (the cache keeps one entry per CPU model), e.g.
  export NUMBA_CACHE_DIR=$HOME/.cache/tvnumba-numba
  tvnumba warm

""" + _EXIT_DOC


# ---------------------------------------------------------------------------- helpers
def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def _number(name: str, minimum: float, strict: bool):
    """argparse type: a finite float > minimum (strict) or >= minimum."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        ok = math.isfinite(value) and (value > minimum if strict else value >= minimum)
        if not ok:
            rel = ">" if strict else ">="
            raise argparse.ArgumentTypeError(
                f"{name} must be a finite number {rel} {minimum:g}, got {text!r}")
        return value

    parse.__name__ = name  # argparse's fallback message names the type
    return parse


def _count(name: str, minimum: int = 1):
    """argparse type: an integer >= minimum."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {text!r}")
        return value

    parse.__name__ = name
    return parse


def _listed(item):
    """argparse type: comma-separated values, each parsed by ``item``; a tuple."""
    def parse(text: str) -> tuple:
        parts = [t.strip() for t in text.split(",")]
        if not parts or any(t == "" for t in parts):
            raise argparse.ArgumentTypeError(
                f"expected comma-separated values (e.g. 2,0.5,0.5), got {text!r}")
        return tuple(item(t) for t in parts)

    parse.__name__ = getattr(item, "__name__", "list")
    return parse


def _axis(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


_axis.__name__ = "axes"


def _weight(text: str):
    """argparse type for --weight: a number >= 0, or ``auto`` (passed through)."""
    if text == "auto":
        return "auto"
    return _number("weight", 0.0, False)(text)


_weight.__name__ = "weight"


def _fixed_weight(text: str) -> float:
    """argparse type for --weight where no automatic rule exists (inpainting)."""
    if text == "auto":
        raise argparse.ArgumentTypeError(
            "inpainting has no automatic weight; give a number >= 0")
    return _number("weight", 0.0, False)(text)


_fixed_weight.__name__ = "weight"


def _shard(text: str) -> tuple[int, int]:
    """argparse type for --shard K/N (0 <= K < N)."""
    try:
        k, n = (int(t) for t in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N (e.g. 0/8), got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"needs 0 <= K < N, got {text!r}")
    return k, n


_shard.__name__ = "shard"


def _bytes(text: str) -> int:
    """argparse type for --memory-limit: 4GB, 500MiB, 2e9 (Dask's notation)."""
    from dask.utils import parse_bytes

    try:
        value = int(parse_bytes(text))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"expected a size such as 4GB or 512MiB, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


_bytes.__name__ = "memory-limit"

#: Options that take a list, per command: their space-separated values are joined
#: before parsing.
_LIST_OPTIONS = {"tv": ("--spacing", "--axes"),
                 "denoise": ("--spacing", "--chunks", "--depth"),
                 "deconvolve": ("--spacing", "--chunks", "--depth"), "inpaint": ("--spacing",),
                 "warm": ("--command", "--beta", "--dtype", "--ndim")}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _join_lists(argv: list[str], options) -> list[str]:
    """``--spacing 2 0.5 0.5 vol.tif`` → ``--spacing=2,0.5,0.5 vol.tif``: the numbers
    after a list option are its values, up to the first token that is not a number, so
    that they never swallow the file names after them."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out.extend(argv[i:])
            break
        if token in options:
            j = i + 1
            while j < len(argv) and _is_number(argv[j]):
                j += 1
            if j > i + 1:
                out.append(f"{token}={','.join(argv[i + 1:j])}")
                i = j
                continue
        out.append(token)
        i += 1
    return out


def _jsonable(value):
    """Plain JSON values: NumPy scalars unwrapped, non-finite floats as null."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit_json(record: dict) -> None:
    sys.stdout.write(json.dumps(_jsonable(record)) + "\n")
    sys.stdout.flush()


def _cpu_count() -> int:
    """CPUs this process may use (a SLURM or taskset mask, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _spacing_value(values):
    """One spacing for every axis, or one per spatial axis."""
    if values is None:
        return None
    return values[0] if len(values) == 1 else tuple(values)


# -------------------------------------------------------------------------- tvnumba tv
def _tv_files(args) -> int:
    """One line per file; a file that cannot be read or measured gets a one-line error
    on stderr (no traceback) and the others still run.  Returns 1 if any file failed."""
    import numpy as np

    from .io import InputError, read_image
    from .tv import tv

    if not args.json:
        print(f"{'file':40s} {'shape':>16s} {'dtype':>8s} {'TV':>14s} {'ms':>8s}")
    failed = 0
    axes = None if args.axes is None else tuple(args.axes)
    spacing = 1.0 if args.spacing is None else _spacing_value(args.spacing)
    for path in args.files:
        try:
            img, _ = read_image(path)
            channel_axis = args.channel_axis
            if (channel_axis is None and axes is None and img.ndim == 3
                    and img.shape[-1] in (3, 4)):
                channel_axis = -1
            t0 = time.perf_counter()
            value = tv(np.asarray(img), args.beta, axes=axes, channel_axis=channel_axis,
                       spacing=spacing, isotropic=not args.anisotropic,
                       smoothing=args.smoothing, reduction=args.reduction)
            ms = 1e3 * (time.perf_counter() - t0)
        except (InputError, ValueError, TypeError) as e:  # the file, or tv's checks on it
            failed += 1
            sys.stdout.flush()
            print(f"tvnumba tv: error: {path}: {_first_line(e)}", file=sys.stderr)
            if args.json:
                _emit_json(dict(input=path, status="error", error=_first_line(e)))
            continue
        if args.json:
            _emit_json(dict(input=path, status="ok", error=None, shape=list(img.shape),
                            dtype=str(img.dtype), tv=value, beta=args.beta,
                            smoothing=args.smoothing, isotropic=not args.anisotropic,
                            axes=axes, channel_axis=channel_axis, spacing=spacing,
                            reduction=args.reduction, ms=ms))
        else:
            shown = (f"{value:14.6g}" if np.ndim(value) == 0
                     else np.array2string(np.asarray(value), precision=6, separator=","))
            print(f"{path:40s} {str(img.shape):>16s} {str(img.dtype):>8s} {shown} {ms:8.2f}")
    if args.json:
        _emit_json(dict(summary=True, files=len(args.files), ok=len(args.files) - failed,
                        failed=failed))
    return 1 if failed else 0


# ----------------------------------------------------------------- usage, before work
class _DataKind:
    """What the solver registry asks of a problem's data term before any data exists."""

    def __init__(self, problem: str, noise: str):
        from .solvers.data_terms import PoissonLoss, SquaredLoss

        self.dct_diagonal = problem == "denoise"  # only the identity is diagonal in DCT
        self.loss = PoissonLoss() if noise == "poisson" else SquaredLoss()


def _check_usage(args, parser) -> None:
    """Option values that no input can satisfy: one usage error, before any work."""
    if args.method != "auto":
        from .solvers.registry import SOLVERS

        reason = SOLVERS[args.method].refuses(
            args.beta, 0.0, _DataKind(args.command, getattr(args, "noise", "gaussian")))
        if reason is not None:
            parser.error(f"argument --method: {reason.split(';')[0]}")
    if getattr(args, "noise", "gaussian") == "poisson" and args.method == "auto" \
            and args.beta < 1.0:
        parser.error(f"argument --noise: poisson is solved for --beta >= 1, got --beta "
                     f"{args.beta:g}")
    if args.device == "cuda":
        import numpy as np

        from .backends import select

        try:
            select(np.zeros(1), "cuda", solver=True)
        except (RuntimeError, ImportError, NotImplementedError) as e:
            parser.error(f"argument --device: {_first_line(e)}")
    if getattr(args, "scheduler", None) and (args.workers or args.memory_limit):
        parser.error("argument --scheduler: --workers and --memory-limit start a local "
                     "cluster; they do not apply to an existing one")
    if args.command == "deconvolve":
        from ._batch import read_psf
        from .io import InputError

        try:
            read_psf(args.psf)  # a bad PSF fails every input
        except InputError as e:
            parser.error(f"argument --psf: {args.psf}: {e}")
    if args.command == "inpaint":
        from ._batch import read_mask
        from .io import InputError

        try:
            read_mask(args.mask)
        except InputError as e:
            parser.error(f"argument --mask: {args.mask}: {e}")
    try:
        os.makedirs(args.outdir, exist_ok=True)
    except OSError as e:
        parser.error(f"argument -o/--outdir: cannot create {args.outdir!r} ({e.strerror})")
    if not os.path.isdir(args.outdir):
        parser.error(f"argument -o/--outdir: {args.outdir!r} is not a folder")
    if not os.access(args.outdir, os.W_OK | os.X_OK):
        parser.error(f"argument -o/--outdir: {args.outdir!r} is not writable")


# --------------------------------------------------------------------- tvnumba denoise
#: ``--weight`` when not given (``"counts"``: the Poisson starting weight of each image).
#: The commands that take volumes chunk by chunk (Zarr, OME-Zarr, large TIFF).
VOLUME_COMMANDS = ("denoise", "deconvolve")


_DEFAULT_WEIGHTS = {"denoise": 0.1, "deconvolve": 0.001, "inpaint": 0.01}


def _parameters(args) -> dict:
    weight = args.weight
    if weight is None:
        weight = (_DEFAULT_WEIGHTS[args.command] if getattr(args, "noise", "") != "poisson"
                  else "counts")
    p = dict(problem=args.command, weight=weight, beta=args.beta, eps=args.eps,
             max_iter=args.max_iter, channel_axis=args.channel_axis,
             isotropic=not args.anisotropic, spacing=_spacing_value(args.spacing),
             method=args.method, device=args.device, as_batch=args.as_batch,
             like_input=args.like_input)
    if args.command in ("denoise", "deconvolve"):
        p.update(noise=args.noise, background=args.background)
    if args.command == "deconvolve":
        p.update(psf=os.path.abspath(args.psf), boundary=args.boundary)
    if args.command == "inpaint":
        p.update(mask=os.path.abspath(args.mask))
    if args.command in VOLUME_COMMANDS:
        p.update(chunks=None if args.chunks is None else list(args.chunks),
                 depth=None if args.depth is None else list(args.depth),
                 overwrite=args.overwrite)
    return p


def _volume_options(args) -> bool:
    return args.command in VOLUME_COMMANDS and any(
        (args.zarr, args.ome_zarr, args.chunks, args.depth, args.scheduler, args.workers,
         args.memory_limit))


def _plan(args, inputs, parameters) -> list[tuple[str, dict | None, str | None]]:
    """``(input, task, problem)`` for every input: a task, or why there is none.

    Every output name is checked against every other input's, so that two inputs that
    would write one file are both refused, whichever job of an array holds them.
    """
    from ._volume import wants_volume
    from ._zarr_io import is_ome_zarr, output_stem
    from .io import is_zarr_store

    volume_options = _volume_options(args)
    planned = []
    for path, problem in inputs:
        if problem is None and args.command not in VOLUME_COMMANDS and is_zarr_store(path):
            problem = (f"a Zarr store: {args.command} reads images whole; Zarr volumes go "
                       "through tvnumba denoise or deconvolve")
        if problem is not None:
            planned.append((path, None, problem))
            continue
        volume = (args.command in VOLUME_COMMANDS
                  and wants_volume(path, parameters, volume_options))
        if volume:
            ome = bool(args.ome_zarr) or is_ome_zarr(path)
            name = output_stem(path) + args.suffix + (".ome.zarr" if ome else ".zarr")
            task = dict(input=path, output=os.path.join(args.outdir, name),
                        parameters=parameters, volume=True, ome=ome)
        else:
            stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
            task = dict(input=path, output=os.path.join(args.outdir, stem + args.suffix + ".tif"),
                        parameters=parameters, volume=False)
        planned.append((path, task, None))
    sources = {os.path.realpath(path) for path, task, _ in planned if task is not None}
    by_output: dict[str, list[str]] = {}
    for path, task, _ in planned:
        if task is not None:
            by_output.setdefault(os.path.abspath(task["output"]), []).append(path)
    out = []
    for path, task, problem in planned:
        if task is not None:
            output = task["output"]
            others = [q for q in by_output[os.path.abspath(output)] if q != path]
            if os.path.realpath(output) in sources:
                task, problem = None, (f"the output {output} would replace an input file; "
                                       "use --suffix or another -o")
            elif others:
                task, problem = None, (f"same output {output} as {', '.join(others)}; "
                                       "rename one of them or use --suffix")
        out.append((path, task, problem))
    return out


def _denoise_files(args, parser) -> int:
    from .io import clear_stale_temporaries, expand_inputs

    t_start = time.perf_counter()
    name = f"tvnumba {args.command}"
    _check_usage(args, parser)

    jobs = args.jobs
    cpus = _cpu_count()
    threads = args.threads if args.threads is not None else max(1, cpus // jobs)
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if args.threads is None:
        threads = min(threads, limit)
    elif threads > limit:
        parser.error(f"argument --threads: at most {limit} (NUMBA_NUM_THREADS), got {threads}")
    elif jobs * threads > cpus and not args.quiet:
        print(f"{name}: warning: --jobs {jobs} x --threads {threads} exceeds "
              f"the {cpus} CPUs available", file=sys.stderr)

    counts = dict(ok=0, skipped=0, failed=0)
    bar = None

    def say(line: str, stream=None) -> None:
        stream = sys.stderr if stream is None else stream
        if bar is not None:
            bar.write(line, file=stream)
        else:
            print(line, file=stream)
        stream.flush()

    def report_error(path, output, message) -> None:
        counts["failed"] += 1
        sys.stdout.flush()
        say(f"{name}: error: {path}: {message}", sys.stderr)
        if args.json:
            _emit_json(dict(input=path, output=output, status="error", error=message))

    def report(record: dict) -> None:
        if record["status"] == "error":
            counts["failed"] += 1
            sys.stdout.flush()
            say(f"{name}: error: {record['input']}: {record['error']}", sys.stderr)
        else:
            counts[record["status"]] += 1
        if args.json:
            _emit_json(record)
        elif not args.quiet and record["status"] == "ok" and "chunks_total" in record:
            say(f"{record['input']} -> {record['output']}: {record['chunks_total']} chunks "
                f"({record['chunks_skipped']} done before), {record['seconds']:.2f} s",
                sys.stdout)
        elif not args.quiet and record["status"] == "ok":
            its = record["iterations"]
            its = max(its) if isinstance(its, list) else its
            say(f"{record['input']} -> {record['output']}: {record['method']}, {its} it, "
                f"gap {record['gap']:.2g}, {record['seconds']:.2f} s", sys.stdout)
        elif not args.quiet and record["status"] == "skipped":
            say(f"{record['input']}: skipped, {record['output']} exists", sys.stdout)
        if bar is not None:
            bar.update(1)

    inputs = expand_inputs(args.inputs)
    parameters = _parameters(args)
    planned = _plan(args, inputs, parameters)
    if args.shard is not None:
        k, n = args.shard
        planned = [entry for i, entry in enumerate(planned) if i % n == k]
    tasks = []
    for path, task, problem in planned:
        if task is None:
            report_error(path, None, problem)
        else:
            tasks.append(task)
    files = [t for t in tasks if not t["volume"]]
    volumes = [t for t in tasks if t["volume"]]
    # Temporaries of a killed run (only those of this run's outputs or of dead local
    # processes: another job of an array may be writing into the same folder now).
    cleared = clear_stale_temporaries(args.outdir, [t["output"] for t in files])
    todo, skipped = [], []
    for t in tasks:
        if not args.overwrite and os.path.exists(t["output"]):
            skipped.append(dict(input=t["input"], output=t["output"], status="skipped",
                                error=None, parameters=t["parameters"]))
            if t["volume"]:  # complete: an earlier run wrote every chunk
                skipped[-1].update(chunks_total=None, chunks_skipped=None)
        elif not t["volume"]:
            todo.append(t)
    volumes = [t for t in volumes if args.overwrite or not os.path.exists(t["output"])]

    show_bars = not args.quiet and sys.stderr.isatty()
    if show_bars and todo:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the pool may fork after this
        bar = tqdm(total=len(todo) + len(skipped), unit="file", file=sys.stderr,
                   dynamic_ncols=True)
    for rec in skipped:
        report(rec)

    from ._pool import run_pool, set_threads

    cluster = None
    try:
        if jobs == 1 or len(todo) <= 1:
            set_threads(threads, args.threads is not None)
            from ._batch import run_task

            for t in todo:
                report(run_task(t))
        else:
            from ._batch import run_task
            from ._warm import warm_for_tasks

            # Compile here, once, what every worker would otherwise compile for itself;
            # the workers load it from Numba's cache.
            warm_for_tasks(todo)
            run_pool(todo, run_task, jobs=jobs, threads=threads,
                     explicit=args.threads is not None, start_method=args.start_method,
                     report=report)
        if bar is not None:
            bar.close()
            bar = None
        if volumes:
            from ._volume import Cluster, run_volume

            cluster = Cluster(scheduler=args.scheduler, workers=args.workers,
                              threads=args.threads, memory_limit=args.memory_limit)
            progress = None
            if show_bars:
                from tqdm import tqdm

                def progress(total, initial, desc):
                    return tqdm(total=total, initial=initial, desc=desc, unit="chunk",
                                file=sys.stderr, dynamic_ncols=True)
            for t in volumes:
                report(run_volume(t, cluster, progress=progress,
                                  say=lambda line: say(f"{name}: {line}")))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"{name}: interrupted; finished outputs are complete, the next run skips "
              "them and resumes chunked ones", file=sys.stderr)
        return 130
    finally:
        if cluster is not None:
            cluster.close()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t_start
    if args.json:
        _emit_json(dict(summary=True, files=len(planned), ok=counts["ok"],
                        skipped=counts["skipped"], failed=counts["failed"], seconds=seconds,
                        outdir=args.outdir, jobs=jobs, threads=threads,
                        cleared_temporaries=len(cleared)))
    elif not args.quiet:
        done = {"denoise": "denoised", "deconvolve": "deconvolved", "inpaint": "inpainted"}
        print(f"done: {counts['ok']} {done[args.command]}, {counts['skipped']} skipped, "
              f"{counts['failed']} failed in {seconds:.1f} s")
    return 1 if counts["failed"] else 0


def _add_noise_options(p) -> None:
    """``--noise`` and ``--background`` of ``denoise`` and ``deconvolve``."""
    p.add_argument("--noise", choices=("gaussian", "poisson"), default="gaussian",
                   help="noise model: gaussian (default) or poisson (the input holds photon "
                        "counts, never rescaled; --beta >= 1)")
    p.add_argument("--background", type=_number("background", 0.0, False), default=0.0,
                   help="poisson: the known background in counts (default 0)")


def _add_batch_options(p, methods, *, weight: float, what: str, auto: bool = True) -> None:
    """The options ``tvnumba denoise``, ``deconvolve`` and ``inpaint`` share."""
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, Zarr stores, folders or glob patterns")
    p.add_argument("-o", "--outdir", required=True, help="output folder (created)")
    if auto:
        p.add_argument("--weight", type=_weight, default=None,
                       help=f"{what} weight >= 0, or 'auto' (default {weight:g}; with "
                            f"--noise poisson 0.35/sqrt(m) * (17 m)^(1 - beta), m = mean count - "
                            f"background)")
    else:
        p.add_argument("--weight", type=_fixed_weight, default=weight,
                       help=f"{what} weight >= 0 (default {weight:g})")
    p.add_argument("--beta", type=_number("beta", 0.0, True), default=1.0,
                   help="order β > 0 (default 1)")
    p.add_argument("--eps", type=_number("eps", 0.0, True), default=1e-3,
                   help="stopping tolerance (default 1e-3; see the function's eps)")
    p.add_argument("--max-iter", type=_count("max-iter"), default=None,
                   help="iteration cap (default: the method's)")
    p.add_argument("--channel-axis", type=int, default=None,
                   help="default: -1 for RGB(A) images, the OME-Zarr channel axis, else none")
    p.add_argument("--anisotropic", action="store_true", help="anisotropic TV")
    p.add_argument("--spacing", type=_listed(_number("spacing", 0.0, True)), default=None,
                   metavar="H[,H...]",
                   help="grid spacing: one value, or one per spatial axis (default: from "
                        "TIFF metadata for 3-D volumes, from OME-Zarr metadata, else 1)")
    p.add_argument("--method", choices=methods, default="auto")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("-j", "--jobs", type=_count("jobs"), default=1,
                   help="worker processes for files (default 1: in this process)")
    p.add_argument("--threads", type=_count("threads"), default=None,
                   help="threads per job or per volume worker (default: CPUs // jobs)")
    p.add_argument("--start-method", choices=("spawn", "fork", "forkserver"),
                   default="spawn", help="how --jobs workers start (default spawn)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute inputs whose output exists (default: skip them)")
    p.add_argument("--suffix", default="", help="added to the output stem (default none)")
    p.add_argument("--shard", type=_shard, default=None, metavar="K/N",
                   help="only inputs K, K+N, K+2N, ... (0-based) of the full list: one "
                        "job of an array of N")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per input on stdout, then a summary line")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar, no per-file lines (errors still shown)")
    p.add_argument("--as-batch", action="store_true",
                   help="treat a 3-D stack as 2-D images processed one by one")
    p.add_argument("--like-input", action="store_true",
                   help="write the input's dtype instead of float32")


def _add_volume_options(p) -> None:
    g = p.add_argument_group("volumes (Zarr, OME-Zarr, large TIFF) through Dask")
    g.add_argument("--zarr", action="store_true",
                   help="write TIFF inputs as Zarr, chunk by chunk (Zarr inputs always are)")
    g.add_argument("--ome-zarr", action="store_true",
                   help="write OME-Zarr (the default for OME-Zarr inputs)")
    g.add_argument("--chunks", type=_listed(_count("chunks")), default=None,
                   metavar="Z,Y,X", help="chunk lengths along the spatial axes (default: "
                                         "the input's, or what a worker's memory holds)")
    g.add_argument("--depth", type=_listed(_count("depth", 0)), default=None,
                   metavar="D[,D...]", help="halo of each chunk in voxels, one or one per "
                                            "spatial axis (default tvnumba.dask.default_depth)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="a running dask.distributed scheduler (e.g. tcp://host:8786)")
    g.add_argument("--workers", type=_count("workers"), default=None,
                   help="local cluster: worker processes, one chunk each at a time "
                        "(default 1)")
    g.add_argument("--memory-limit", type=_bytes, default=None, metavar="SIZE",
                   help="local cluster: memory per worker, e.g. 4GB (default: the "
                        "machine's memory / workers)")


def _add_warm(sub) -> None:
    from .solvers.registry import METHODS

    p = sub.add_parser("warm", help="compile the kernels of the common cases into the cache",
                       epilog=_WARM_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = ("denoise", "deconvolve", "inpaint")

    def command(text):
        if text not in commands:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(commands)}, "
                                             f"got {text!r}")
        return text

    def dtype(text):
        if text not in ("float32", "float64"):
            raise argparse.ArgumentTypeError(f"expected float32 or float64, got {text!r}")
        return text

    def ndim(text):
        value = _count("ndim")(text)
        if value > 3:
            raise argparse.ArgumentTypeError(f"ndim must be 1, 2 or 3, got {text!r}")
        return value

    command.__name__, dtype.__name__, ndim.__name__ = "command", "dtype", "ndim"
    p.add_argument("--command", type=_listed(command), default=("denoise",),
                   dest="problems", metavar="NAME[,NAME...]", help="denoise, deconvolve, inpaint "
                                                  "(default denoise)")
    p.add_argument("--beta", type=_listed(_number("beta", 0.0, True)), default=(1.0,),
                   metavar="B[,B...]", help="orders β (default 1)")
    p.add_argument("--dtype", type=_listed(dtype), default=("float32", "float64"),
                   metavar="T[,T...]", help="float32, float64 (default both; integer "
                                            "images are solved in float64)")
    p.add_argument("--ndim", type=_listed(ndim), default=(2, 3), metavar="N[,N...]",
                   help="spatial dimensions (default 2,3; 2 includes RGB)")
    p.add_argument("--method", choices=METHODS, default="auto")
    p.add_argument("--noise", choices=("gaussian", "poisson"), default="gaussian",
                   help="the noise model of the solves (poisson: denoise and deconvolve "
                        "only; default gaussian)")
    p.add_argument("--json", action="store_true", help="one JSON line per case")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors")


def _warm(args) -> int:
    from ._warm import cache_location, common_cases, warm_case

    if args.noise == "poisson" and "inpaint" in args.problems:
        print("tvnumba warm: error: --noise poisson applies to denoise and deconvolve, "
              "not inpaint", file=sys.stderr)
        return 2
    base = dict(weight=0.1, eps=1e-3, max_iter=None, channel_axis=None, isotropic=True,
                spacing=None, method=args.method, device=None, as_batch=False,
                like_input=False, boundary="extend", noise=args.noise, background=0.0)
    failed = 0
    t0 = time.perf_counter()
    for problem, beta, dtype, shape in common_cases(args.problems, args.beta, args.dtype,
                                                    args.ndim):
        weight = {"denoise": 0.1, "deconvolve": 0.001, "inpaint": 0.01}[problem]
        try:
            rec = warm_case(problem, beta, dtype, shape, dict(base, weight=weight))
        except (ValueError, TypeError, RuntimeError) as e:
            failed += 1
            print(f"tvnumba warm: error: {problem} beta {beta:g} {dtype} {shape}: "
                  f"{_first_line(e)}", file=sys.stderr)
            continue
        if args.json:
            _emit_json(rec)
        elif not args.quiet:
            print(f"{problem:10s} beta {beta:<4g} {dtype} {str(tuple(shape)):14s} "
                  f"{rec['method']:>6s} {rec['seconds']:6.2f} s", flush=True)
    if not args.quiet and not args.json:
        print(f"done in {time.perf_counter() - t0:.1f} s; cache: {cache_location()}")
    return 1 if failed else 0


# ------------------------------------------------------------------------------- main
def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tvnumba", description=__doc__.split("\n")[0],
        epilog="commands: demo, tv, denoise, deconvolve, inpaint, warm "
               "(tvnumba COMMAND --help)\n\n" + _EXIT_DOC,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tvnumba {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", add_help=False,
                   help="denoise a scikit-image sample image for several β")

    p_tv = sub.add_parser("tv", help="β-TV of image files", epilog=_TV_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p_tv.add_argument("files", nargs="+")
    p_tv.add_argument("--beta", type=_number("beta", 0.0, True), default=1.0,
                      help="order β > 0 (default 1)")
    p_tv.add_argument("--smoothing", type=_number("smoothing", 0.0, False), default=0.0,
                      help="s >= 0 (default 0)")
    p_tv.add_argument("--anisotropic", action="store_true")
    p_tv.add_argument("--channel-axis", type=int, default=None,
                      help="default: -1 for RGB(A) images, else none")
    p_tv.add_argument("--axes", type=_listed(_axis), default=None, metavar="A[,A...]",
                      help="spatial axes (default: all but the channel axis); "
                           "the others are batch axes")
    p_tv.add_argument("--spacing", type=_listed(_number("spacing", 0.0, True)),
                      default=None, metavar="H[,H...]",
                      help="grid spacing: one value, or one per spatial axis")
    p_tv.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    p_tv.add_argument("--json", action="store_true",
                      help="one JSON line per file on stdout, then a summary line")

    from .solvers.registry import METHODS

    for name, epilog, what in (("denoise", _DENOISE_EPILOG, "denoising"),
                               ("deconvolve", _DECONVOLVE_EPILOG, "deconvolution")):
        p = sub.add_parser(name, help=f"{name} images and volumes into a folder",
                           epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == "deconvolve":
            p.add_argument("--psf", required=True,
                           help="point-spread function file (TIFF, PNG, ...)")
            p.add_argument("--boundary", choices=("extend", "periodic"), default="extend",
                           help="extend (default: no ringing at the border) or periodic")
        _add_batch_options(p, METHODS, weight=_DEFAULT_WEIGHTS[name], what=what)
        _add_noise_options(p)
        _add_volume_options(p)
    p_in = sub.add_parser("inpaint", help="inpaint image files into a folder",
                          epilog=_INPAINT_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p_in.add_argument("--mask", required=True, help="mask file: nonzero pixels are missing")
    _add_batch_options(p_in, METHODS, weight=0.01, what="inpainting", auto=False)
    _add_warm(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tvnumba`` and ``python -m tvnumba``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return demo_main(argv[1:])
    command = next((a for a in argv if not a.startswith("-")), None)
    args = parser.parse_args(_join_lists(argv, _LIST_OPTIONS.get(command, ())))
    try:
        if args.command == "tv":
            return _tv_files(args)
        if args.command == "warm":
            return _warm(args)
        sub = parser._subparsers._group_actions[0].choices[args.command]
        return _denoise_files(args, sub)
    except KeyboardInterrupt:
        print(f"tvnumba {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
