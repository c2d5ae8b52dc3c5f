"""The ``tvnumba`` command.

``tvnumba demo``
    Runs the demo on a scikit-image sample image (``tvnumba demo --help``).
``tvnumba tv FILE [FILE ...]``
    Prints the β-TV of image files (a table, or one JSON line per file with ``--json``).
``tvnumba denoise INPUT [INPUT ...] -o OUTDIR``
    Denoises image files, folders of them or glob patterns into ``OUTDIR`` (float32
    TIFF), in a process pool with ``--jobs``; atomic writes, re-runs skip finished files.
``tvnumba deconvolve INPUT [INPUT ...] --psf PSF -o OUTDIR``
    The same batch, deconvolving each image with the point-spread function in ``PSF``
    (:func:`tvnumba.deconvolve_tv_beta`).
``tvnumba inpaint INPUT [INPUT ...] --mask MASK -o OUTDIR``
    The same batch, filling the pixels that ``MASK`` marks (nonzero = missing) with
    :func:`tvnumba.inpaint_tv_beta`.
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
    Usage error: a bad option or value (nothing was computed), or an output folder
    that cannot be created.
130
    Interrupted (Ctrl-C); finished outputs are complete, temporaries are cleared by
    the next run.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import time

_EXIT_DOC = """\
exit status:
  0  every input succeeded (or was skipped: its output exists)
  1  some inputs failed (one line each on stderr); the others still ran
  2  usage error (bad option or value, unusable output folder)"""

_TV_EPILOG = """\
examples:
  tvnumba tv image.png
  tvnumba tv --beta 0.5 --smoothing 0.01 a.tif b.tif
  tvnumba tv --spacing 2 0.5 0.5 volume.tif      # Z, Y, X spacing
  tvnumba tv --axes 1 2 stack.tif --reduction mean  # axis 0 is a batch axis
  tvnumba tv --json *.png > tv.jsonl

""" + _EXIT_DOC

_DENOISE_EPILOG = """\
examples:
  tvnumba denoise noisy.png -o out/                 # out/noisy.tif (float32)
  tvnumba denoise data/ -o out/ --weight 0.05 --beta 0.5 --jobs 2
  tvnumba denoise 'raw/*.tif' -o out/ --like-input --suffix _tv
  tvnumba denoise stack.tif -o out/ --as-batch      # each page on its own
  tvnumba denoise vol.tif -o out/ --spacing 2 0.5 0.5 --json > log.jsonl

inputs:
  files, folders (their .tif/.tiff/.png/.jpg/.jpeg/.bmp files, not recursive) and
  glob patterns (quote them to let tvnumba expand them).  TIFF through tifffile (a
  multi-page file is one 3-D volume, or with --as-batch a stack of 2-D images), the
  rest through imageio.  Integer images are scaled to [0, 1] ([-1, 1] if signed) as
  by skimage.util.img_as_float; RGB(A) images get --channel-axis -1 by default.
  A 3-D TIFF with ImageJ spacing and X/Y resolution gets that spacing unless
  --spacing is given, and it is written back.

outputs:
  OUTDIR/<input stem><suffix>.tif, float32, or with --like-input in the input's
  dtype: integers as round(clip(u, 0, 1) * max) (signed: clip to [-1, 1]), the
  inverse of img_as_float.  Each file is written to a temporary name in OUTDIR and
  renamed when complete, so a killed run leaves only complete outputs; the next run
  skips inputs whose output exists (unless --overwrite) and deletes the temporaries
  the killed run left.

""" + _EXIT_DOC


_DECONVOLVE_EPILOG = """\
examples:
  tvnumba deconvolve blurred.tif --psf psf.tif -o out/          # out/blurred.tif (float32)
  tvnumba deconvolve data/ --psf psf.tif -o out/ --weight auto --jobs 2
  tvnumba deconvolve stack.tif --psf psf3d.tif -o out/ --spacing 2 0.5 0.5

The PSF is read like the inputs (TIFF or PNG/JPEG), as floats, and normalised to sum 1;
it needs as many axes as the images' spatial axes.  --boundary extend (the default)
solves for the scene on the full support of the blur, so real images do not ring at the
border; periodic is the circular model.  Inputs, outputs, atomic writes, re-runs and
--jobs as for tvnumba denoise (tvnumba denoise --help).

""" + _EXIT_DOC


_INPAINT_EPILOG = """\
examples:
  tvnumba inpaint damaged.png --mask scratches.png -o out/        # out/damaged.tif
  tvnumba inpaint frames/ --mask dead_pixels.tif -o out/ --beta 1.5 --jobs 2

The mask is read like the inputs; nonzero pixels are missing (as the mask of
skimage.restoration.inpaint_biharmonic).  It has the images' spatial shape (one mask for
every channel) or their full shape.  The known pixels are kept exactly.  Inputs, outputs,
atomic writes, re-runs and --jobs as for tvnumba denoise (tvnumba denoise --help).

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


def _count(name: str):
    """argparse type: an integer >= 1."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {text!r}")
        return value

    parse.__name__ = name
    return parse


def _weight(text: str):
    """argparse type for --weight: a number >= 0, or ``auto`` (passed through)."""
    if text == "auto":
        return "auto"
    return _number("weight", 0.0, False)(text)


_weight.__name__ = "weight"


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
    for path in args.files:
        try:
            img, _ = read_image(path)
            channel_axis = args.channel_axis
            if (channel_axis is None and args.axes is None and img.ndim == 3
                    and img.shape[-1] in (3, 4)):
                channel_axis = -1
            spacing = 1.0 if args.spacing is None else args.spacing
            t0 = time.perf_counter()
            value = tv(np.asarray(img), args.beta, axes=args.axes, channel_axis=channel_axis,
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
                            axes=args.axes, channel_axis=channel_axis, spacing=spacing,
                            reduction=args.reduction, ms=ms))
        else:
            shown = (f"{value:14.6g}" if np.ndim(value) == 0
                     else np.array2string(np.asarray(value), precision=6, separator=","))
            print(f"{path:40s} {str(img.shape):>16s} {str(img.dtype):>8s} {shown} {ms:8.2f}")
    if args.json:
        _emit_json(dict(summary=True, files=len(args.files), ok=len(args.files) - failed,
                        failed=failed))
    return 1 if failed else 0


# --------------------------------------------------------------------- tvnumba denoise
def _init_worker(threads: int, explicit: bool = True) -> None:
    """Pool initializer: this worker's kernels use ``threads`` threads.  A count the
    user gave (``--threads``) is kept as it is; the default (CPUs // jobs) is only a
    cap, below which each solve still adapts to the machine's load
    (:func:`tvnumba._threads.for_solve`)."""
    import numba

    from ._threads import set_num_threads

    if explicit:
        set_num_threads(threads)
    else:
        numba.set_num_threads(threads)


def _denoise_task(task: dict) -> dict:
    """Read, denoise and write one file; every failure becomes the record's ``error``.

    Runs in a pool worker (or in-process with ``--jobs 1``), so it never raises:
    the parent reports the record.
    """
    record = dict(input=task["input"], output=task["output"], status="error", error=None,
                  shape=None, dtype=None, parameters=task["parameters"], method=None,
                  iterations=None, gap=None, converged=None, seconds=None)
    t0 = time.perf_counter()
    try:
        _denoise_file(task, record)
        record["status"] = "ok"
    except Exception as e:  # the file's problem (unreadable, NaN, wrong axes): one line
        from .io import InputError

        user = isinstance(e, (InputError, ValueError, TypeError))
        record["error"] = _first_line(e) if user else f"{type(e).__name__}: {_first_line(e)}"
    record["seconds"] = time.perf_counter() - t0
    return record


def _solver(p: dict):
    """``solve(image, **kwargs) -> (u, info)`` for the command's problem."""
    from .restoration import deconvolve_tv_beta, denoise_tv_beta

    if p["problem"] == "deconvolve":
        psf = _read_psf(p["psf"])

        def solve(image, **kwargs):
            return deconvolve_tv_beta(image, psf, p["weight"], p["beta"],
                                      boundary=p["boundary"], **kwargs)
        return solve
    if p["problem"] == "inpaint":
        from .restoration import inpaint_tv_beta

        mask = _read_mask(p["mask"])

        def solve(image, **kwargs):
            return inpaint_tv_beta(image, mask, p["weight"], p["beta"], **kwargs)
        return solve

    def solve(image, **kwargs):
        return denoise_tv_beta(image, p["weight"], p["beta"], **kwargs)
    return solve


@functools.lru_cache(maxsize=4)
def _read_psf(path: str):
    """The PSF file as float64 normalised to sum 1, or :class:`InputError`; read once
    per process (every input of a batch uses it), returned read-only."""
    import numpy as np

    from .io import InputError, read_image

    psf, _ = read_image(path)
    psf = np.asarray(psf, dtype=np.float64)
    total = float(psf.sum())
    if not np.isfinite(psf).all() or not total > 0:
        raise InputError(f"the PSF {path} must be finite with a positive sum, got sum {total:g}")
    psf = psf / total
    psf.flags.writeable = False
    return psf


@functools.lru_cache(maxsize=4)
def _read_mask(path: str):
    """The mask file as bool (nonzero = missing), or :class:`InputError`; read once per
    process, returned read-only."""
    import numpy as np

    from .io import InputError, read_image

    mask, _ = read_image(path)
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):  # an RGB(A) drawing: any channel set
        mask = mask[..., :3].any(axis=-1)
    if not np.isfinite(mask).all():
        raise InputError(f"the mask {path} holds NaN or infinite values")
    mask = mask != 0
    mask.flags.writeable = False
    return mask


def _denoise_file(task: dict, record: dict) -> None:
    import numpy as np

    from .io import InputError, read_image, to_input_dtype, write_tiff_atomic

    p = task["parameters"]
    solve = _solver(p)
    img, meta = read_image(task["input"])
    record["shape"], record["dtype"] = list(img.shape), str(img.dtype)
    channel_axis = p["channel_axis"]
    if channel_axis is None and img.ndim == 3 and img.shape[-1] in (3, 4) and not p["as_batch"]:
        channel_axis = -1  # RGB(A)
    spacing = p["spacing"]
    written_spacing = None
    if spacing is None:
        spacing = 1.0
        if channel_axis is None and not p["as_batch"]:
            from_meta = meta.spacing(img.ndim)
            if from_meta is not None:
                spacing = written_spacing = from_meta
    elif img.ndim == 3 and channel_axis is None and not p["as_batch"] and len(spacing) == 3:
        written_spacing = tuple(spacing)
    kwargs = dict(eps=p["eps"], max_num_iter=p["max_iter"], isotropic=p["isotropic"],
                  spacing=spacing, method=p["method"], device=p["device"],
                  return_info=True)
    record["spacing"] = spacing
    if p["as_batch"]:
        if img.ndim < 3:
            raise InputError(f"--as-batch needs a stack of 2-D images, got shape {img.shape}")
        if channel_axis is not None:
            channel_axis = channel_axis % img.ndim
            if channel_axis == 0:
                raise InputError("--channel-axis cannot be the batch axis 0 with --as-batch")
            channel_axis -= 1
        if img.ndim - 1 - (channel_axis is not None) != 2:
            raise InputError(f"--as-batch needs 2-D images in the stack, got shape {img.shape}")
        out = None
        infos = []
        for i in range(img.shape[0]):
            u, info = solve(img[i], channel_axis=channel_axis, **kwargs)
            if out is None:
                out = np.empty(img.shape, u.dtype)
            out[i] = u
            infos.append(info)
        record.update(method=infos[0].method, iterations=[i.iterations for i in infos],
                      gap=max(i.gap for i in infos),
                      converged=all(i.converged for i in infos),
                      weight=[getattr(i, "weight", None) for i in infos])
    else:
        out, info = solve(img, channel_axis=channel_axis, **kwargs)
        record.update(method=info.method, iterations=info.iterations, gap=info.gap,
                      converged=info.converged, weight=getattr(info, "weight", None))
    out = np.asarray(out)
    out = to_input_dtype(out, img.dtype) if p["like_input"] else out.astype(np.float32)
    record["out_dtype"] = str(out.dtype)
    rgb = (not p["as_batch"] and channel_axis is not None and out.ndim == 3
           and channel_axis % out.ndim == 2 and out.shape[-1] in (3, 4))
    write_tiff_atomic(task["output"], out, meta, spacing=written_spacing, rgb=rgb)


def _plan_outputs(args, inputs, report_error) -> list[dict]:
    """Tasks for the inputs that need work; reports the others (conflicts, skips)."""
    tasks, outputs = [], {}
    parameters = dict(problem=args.command, weight=args.weight, beta=args.beta, eps=args.eps,
                      max_iter=args.max_iter, channel_axis=args.channel_axis,
                      isotropic=not args.anisotropic, spacing=args.spacing,
                      method=args.method, device=args.device, as_batch=args.as_batch,
                      like_input=args.like_input)
    if args.command == "deconvolve":
        parameters.update(psf=os.path.abspath(args.psf), boundary=args.boundary)
    if args.command == "inpaint":
        parameters.update(mask=os.path.abspath(args.mask))
    sources = {os.path.realpath(p) for p, problem in inputs if problem is None}
    for path, problem in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        output = os.path.join(args.outdir, stem + args.suffix + ".tif")
        if problem is not None:
            report_error(path, None, problem)
            continue
        if os.path.realpath(output) in sources:
            report_error(path, output, f"the output {output} would replace an input file; "
                                       "use --suffix or another -o")
            continue
        key = os.path.abspath(output)
        if key in outputs:
            report_error(path, output, f"same output {output} as {outputs[key]}; "
                                       "rename one of them")
            continue
        outputs[key] = path
        tasks.append(dict(input=path, output=output, parameters=parameters))
    return tasks


def _denoise_files(args, parser) -> int:
    from .io import InputError, clear_stale_temporaries, expand_inputs

    t_start = time.perf_counter()
    name = f"tvnumba {args.command}"
    if args.command == "deconvolve":
        try:
            _read_psf(args.psf)  # a bad PSF fails every input: a usage error, before any work
        except InputError as e:
            parser.error(f"argument --psf: {args.psf}: {e}")
    if args.command == "inpaint":
        try:
            _read_mask(args.mask)
        except InputError as e:
            parser.error(f"argument --mask: {args.mask}: {e}")
    try:
        os.makedirs(args.outdir, exist_ok=True)
    except OSError as e:
        parser.error(f"argument -o/--outdir: cannot create {args.outdir!r} ({e.strerror})")
    if not os.path.isdir(args.outdir):
        parser.error(f"argument -o/--outdir: {args.outdir!r} is not a folder")

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

    def say(line: str, stream) -> None:
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
    tasks = _plan_outputs(args, inputs, report_error)
    # Temporaries of a killed run (only those of this run's outputs or of dead local
    # processes: another SLURM task may be writing into the same folder right now).
    cleared = clear_stale_temporaries(args.outdir, [t["output"] for t in tasks])
    todo = []
    skipped = []
    for t in tasks:
        if not args.overwrite and os.path.exists(t["output"]):
            skipped.append(dict(input=t["input"], output=t["output"], status="skipped",
                                error=None, parameters=t["parameters"]))
        else:
            todo.append(t)

    if not args.quiet and sys.stderr.isatty() and todo:
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread: the pool may fork after this
        bar = tqdm(total=len(todo) + len(skipped), unit="file", file=sys.stderr,
                   dynamic_ncols=True)
    for rec in skipped:
        report(rec)

    try:
        if jobs == 1 or len(todo) <= 1:
            _init_worker(threads, args.threads is not None)
            for t in todo:
                report(_denoise_task(t))
        else:
            _run_pool(todo, jobs, threads, args.threads is not None, args.start_method, report)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"{name}: interrupted; finished outputs are complete, "
              "the next run skips them", file=sys.stderr)
        return 130
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t_start
    if args.json:
        _emit_json(dict(summary=True, files=len(inputs), ok=counts["ok"],
                        skipped=counts["skipped"], failed=counts["failed"], seconds=seconds,
                        outdir=args.outdir, jobs=jobs, threads=threads,
                        cleared_temporaries=len(cleared)))
    elif not args.quiet:
        done = {"denoise": "denoised", "deconvolve": "deconvolved", "inpaint": "inpainted"}
        print(f"done: {counts['ok']} {done[args.command]}, {counts['skipped']} skipped, "
              f"{counts['failed']} failed in {seconds:.1f} s")
    return 1 if counts["failed"] else 0


def _run_pool(todo, jobs, threads, explicit, start_method, report) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context(start_method)
    with ProcessPoolExecutor(max_workers=min(jobs, len(todo)), mp_context=ctx,
                             initializer=_init_worker,
                             initargs=(threads, explicit)) as pool:
        futures = {pool.submit(_denoise_task, t): t for t in todo}
        try:
            for fut in as_completed(futures):
                t = futures[fut]
                try:
                    rec = fut.result()
                except BrokenProcessPool:
                    rec = dict(input=t["input"], output=t["output"], status="error",
                               error="worker process died (out of memory?)",
                               parameters=t["parameters"])
                report(rec)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _add_batch_options(p, methods, *, weight: float, what: str) -> None:
    """The options ``tvnumba denoise`` and ``tvnumba deconvolve`` share."""
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders or glob patterns")
    p.add_argument("-o", "--outdir", required=True, help="output folder (created)")
    p.add_argument("--weight", type=_weight, default=weight,
                   help=f"{what} weight >= 0, or 'auto' (default {weight:g})")
    p.add_argument("--beta", type=_number("beta", 0.0, True), default=1.0,
                   help="order β > 0 (default 1)")
    p.add_argument("--eps", type=_number("eps", 0.0, True), default=1e-3,
                   help="stopping tolerance (default 1e-3; see the function's eps)")
    p.add_argument("--max-iter", type=_count("max-iter"), default=None,
                   help="iteration cap (default: the method's)")
    p.add_argument("--channel-axis", type=int, default=None,
                   help="default: -1 for RGB(A) images, else none")
    p.add_argument("--anisotropic", action="store_true", help="anisotropic TV")
    p.add_argument("--spacing", type=_number("spacing", 0.0, True), nargs="+",
                   default=None, help="grid spacing: one value, or one per spatial axis "
                                      "(default: from TIFF metadata for 3-D volumes, else 1)")
    p.add_argument("--method", choices=methods, default="auto")
    p.add_argument("--device", choices=("cpu", "cuda"), default=None)
    p.add_argument("-j", "--jobs", type=_count("jobs"), default=1,
                   help="worker processes (default 1: in this process)")
    p.add_argument("--threads", type=_count("threads"), default=None,
                   help="threads per job (default: CPUs // jobs)")
    p.add_argument("--start-method", choices=("spawn", "fork", "forkserver"),
                   default="spawn", help="how --jobs workers start (default spawn)")
    p.add_argument("--overwrite", action="store_true",
                   help="recompute inputs whose output exists (default: skip them)")
    p.add_argument("--suffix", default="", help="added to the output stem (default none)")
    p.add_argument("--json", action="store_true",
                   help="one JSON line per file on stdout, then a summary line")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bar, no per-file lines (errors still shown)")
    p.add_argument("--as-batch", action="store_true",
                   help="treat a 3-D stack as 2-D images processed one by one")
    p.add_argument("--like-input", action="store_true",
                   help="write the input's dtype instead of float32")


# ------------------------------------------------------------------------------- main
def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tvnumba", description=__doc__.split("\n")[0],
        epilog="commands: demo, tv, denoise, deconvolve, inpaint (tvnumba COMMAND --help)\n\n" + _EXIT_DOC,
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
    p_tv.add_argument("--axes", type=int, nargs="+", default=None,
                      help="spatial axes (default: all but the channel axis); "
                           "the others are batch axes")
    p_tv.add_argument("--spacing", type=_number("spacing", 0.0, True), nargs="+",
                      default=None, help="grid spacing: one value, or one per spatial axis")
    p_tv.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    p_tv.add_argument("--json", action="store_true",
                      help="one JSON line per file on stdout, then a summary line")

    from .solvers.registry import METHODS

    p_dn = sub.add_parser("denoise", help="denoise image files into a folder",
                          epilog=_DENOISE_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_batch_options(p_dn, METHODS, weight=0.1, what="denoising")
    p_dc = sub.add_parser("deconvolve", help="deconvolve image files into a folder",
                          epilog=_DECONVOLVE_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p_dc.add_argument("--psf", required=True, help="point-spread function file (TIFF, PNG, ...)")
    p_dc.add_argument("--boundary", choices=("extend", "periodic"), default="extend",
                      help="extend (default: no ringing at the border) or periodic")
    _add_batch_options(p_dc, METHODS, weight=0.001, what="deconvolution")
    p_in = sub.add_parser("inpaint", help="inpaint image files into a folder",
                          epilog=_INPAINT_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    p_in.add_argument("--mask", required=True, help="mask file: nonzero pixels are missing")
    _add_batch_options(p_in, METHODS, weight=0.01, what="inpainting")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tvnumba`` and ``python -m tvnumba``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "tv":
        return _tv_files(args)
    sub = parser._subparsers._group_actions[0].choices[args.command]
    try:
        return _denoise_files(args, sub)
    except KeyboardInterrupt:
        print(f"tvnumba {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
