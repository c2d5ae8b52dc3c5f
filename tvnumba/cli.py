"""The ``tvnumba`` command.

``tvnumba demo``
    Runs the demo on a scikit-image sample image (``tvnumba demo --help``).
``tvnumba tv FILE [FILE ...]``
    Prints the β-TV of image files (any format scikit-image reads).
"""

from __future__ import annotations

import argparse
import sys
import time


def _tv_files(args) -> int:
    """One line per file; a file that cannot be read or measured gets a
    one-line error on stderr (no traceback) and the others still run.
    Returns 1 if any file failed, else 0."""
    import numpy as np
    from skimage import io

    from .tv import tv

    print(f"{'file':40s} {'shape':>16s} {'dtype':>8s} {'TV':>14s} {'ms':>8s}")
    failed = False
    for path in args.files:
        try:
            img = _read_image(io, path)
            channel_axis = args.channel_axis
            if channel_axis is None and img.ndim == 3 and img.shape[-1] in (3, 4):
                channel_axis = -1
            t0 = time.perf_counter()
            value = tv(np.asarray(img), args.beta, channel_axis=channel_axis,
                       isotropic=not args.anisotropic, smoothing=args.smoothing,
                       reduction=args.reduction)
            ms = 1e3 * (time.perf_counter() - t0)
        except _UserError as e:
            failed = True
            sys.stdout.flush()
            print(f"tvnumba tv: error: {path}: {e}", file=sys.stderr)
            continue
        except (ValueError, TypeError) as e:  # tv's checks on this image (e.g. channel axis)
            failed = True
            sys.stdout.flush()
            print(f"tvnumba tv: error: {path}: {_first_line(e)}", file=sys.stderr)
            continue
        print(f"{path:40s} {str(img.shape):>16s} {str(img.dtype):>8s} {value:14.6g} {ms:8.2f}")
    return 1 if failed else 0


class _UserError(Exception):
    """A file that is not a readable image: reported in one line."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def _read_image(io, path):
    """The image at ``path``, or _UserError saying in one line why not."""
    import os

    if not os.path.exists(path):
        raise _UserError("no such file")
    if os.path.isdir(path):
        raise _UserError("is a directory, not an image file")
    if os.path.getsize(path) == 0:
        raise _UserError("empty file, not an image")
    try:
        img = io.imread(path)
    except Exception as e:  # any reader's failure on a bad file: corrupt, unknown format
        raise _UserError(f"cannot read as an image ({_first_line(e)})") from None
    import numpy as np

    img = np.asarray(img)
    if img.size == 0 or img.dtype.kind not in "biuf":
        raise _UserError(f"not an image: read an array of shape {img.shape}, dtype {img.dtype}")
    return img


def _number(name: str, minimum: float, strict: bool):
    """argparse type: a finite float > minimum (strict) or >= minimum."""
    def parse(text: str) -> float:
        import math

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


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tvnumba`` and ``python -m tvnumba``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="tvnumba", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", add_help=False,
                   help="denoise a scikit-image sample image for several β")
    p_tv = sub.add_parser("tv", help="β-TV of image files")
    p_tv.add_argument("files", nargs="+")
    p_tv.add_argument("--beta", type=_number("beta", 0.0, True), default=1.0,
                      help="order β > 0 (default 1)")
    p_tv.add_argument("--smoothing", type=_number("smoothing", 0.0, False), default=0.0,
                      help="s >= 0 (default 0)")
    p_tv.add_argument("--anisotropic", action="store_true")
    p_tv.add_argument("--channel-axis", type=int, default=None,
                      help="default: -1 for RGB(A) images, else none")
    p_tv.add_argument("--reduction", choices=("sum", "mean"), default="sum")
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    return _tv_files(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
