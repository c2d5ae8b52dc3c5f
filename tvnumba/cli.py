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
    import numpy as np
    from skimage import io

    from .tv import tv

    print(f"{'file':40s} {'shape':>16s} {'dtype':>8s} {'TV':>14s} {'ms':>8s}")
    for path in args.files:
        img = io.imread(path)
        channel_axis = -1 if args.channel_axis is None and img.ndim == 3 and img.shape[-1] in (3, 4) else args.channel_axis
        t0 = time.perf_counter()
        value = tv(np.asarray(img), args.beta, channel_axis=channel_axis,
                   isotropic=not args.anisotropic, smoothing=args.smoothing,
                   reduction=args.reduction)
        ms = 1e3 * (time.perf_counter() - t0)
        print(f"{path:40s} {str(img.shape):>16s} {str(img.dtype):>8s} {value:14.6g} {ms:8.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``tvnumba`` and ``python -m tvnumba``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="tvnumba", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", add_help=False,
                   help="denoise a scikit-image sample image for several β")
    p_tv = sub.add_parser("tv", help="β-TV of image files")
    p_tv.add_argument("files", nargs="+")
    p_tv.add_argument("--beta", type=float, default=1.0)
    p_tv.add_argument("--smoothing", type=float, default=0.0)
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
