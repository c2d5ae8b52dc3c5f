"""``python -m tvnumba demo``: β-TV value/gradient timing and denoising of ``camera``.

(a) prints TV_β(camera), |∇TV_β| and the warm time of :func:`tvnumba.tv_value_and_grad`
    for β ∈ {0.5, 1, 1.5, 2};
(b) denoises camera + Gaussian noise (σ = 0.1, fixed seed) with
    :func:`tvnumba.restoration.denoise_tv_beta` for the same β, prints PSNR / SSIM / time,
    and writes one PNG panel: noisy | β = 0.5 | 1 | 1.5 | 2, each labelled with β and its
    PSNR (``--output``, default ``tvnumba_demo.png`` in the current folder; the path written
    is printed).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

BETAS = (0.5, 1.0, 1.5, 2.0)
#: Weight per β, near the PSNR optimum for σ = 0.1 on camera (see benchmarks).
WEIGHTS = {0.5: 0.04, 1.0: 0.1, 1.5: 0.25, 2.0: 0.5}


def _sigma(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"sigma must be a finite number >= 0, got {text!r}")
    return value


def _repeat(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"repeat must be >= 1, got {text!r}")
    return value


def _parser():
    p = argparse.ArgumentParser(prog="tvnumba demo", description=__doc__.splitlines()[0])
    p.add_argument("--output", default="tvnumba_demo.png", help="PNG panel to write")
    p.add_argument("--no-figure", action="store_true", help="do not write the PNG panel")
    p.add_argument("--sigma", type=_sigma, default=0.1,
                   help="noise standard deviation >= 0 (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--repeat", type=_repeat, default=5,
                   help="timing repeats, >= 1 (best is shown; default 5)")
    return p


def _check_output(parser, path: str) -> None:
    """The panel's folder must exist and be writable: checked before the work."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        parser.error(f"argument --output: {path!r} is a folder; give a file name")
    if not os.path.isdir(folder):
        parser.error(f"argument --output: the folder {folder!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        parser.error(f"argument --output: the folder {folder!r} is not writable")


def _best_time(fn, repeat):
    best = np.inf
    out = None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit status (2: a bad option, before any work)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.no_figure:
        _check_output(parser, args.output)
    from skimage import data, img_as_float
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from .restoration import denoise_tv_beta
    from .tv import tv_value_and_grad

    clean = img_as_float(data.camera())
    print(f"camera {clean.shape}, float64")
    print(f"{'beta':>5} {'TV_beta':>14} {'|grad|':>12} {'value+grad ms':>14}")
    for beta in BETAS:
        tv_value_and_grad(clean, beta)  # compile / warm
        t, (value, grad) = _best_time(lambda: tv_value_and_grad(clean, beta), args.repeat)
        print(f"{beta:5.1f} {value:14.3f} {np.linalg.norm(grad):12.3f} {t * 1e3:14.2f}")

    rng = np.random.default_rng(args.seed)
    noisy = (clean + args.sigma * rng.standard_normal(clean.shape)).astype(np.float32)
    clean32 = clean.astype(np.float32)
    psnr0 = peak_signal_noise_ratio(clean32, noisy, data_range=1.0)
    print(f"\nnoisy: sigma={args.sigma}, seed={args.seed}, PSNR {psnr0:.2f} dB "
          f"(float32, warm, one run each)")
    print(f"{'beta':>5} {'weight':>7} {'method':>7} {'iters':>6} {'PSNR':>7} {'SSIM':>6} "
          f"{'time s':>8}")
    results = []
    for beta in BETAS:
        w = WEIGHTS[beta]
        denoise_tv_beta(noisy[:32, :32], w, beta)  # compile
        t, (u, info) = _best_time(
            lambda: denoise_tv_beta(noisy, w, beta, return_info=True),
            1)
        u = np.clip(u, 0.0, 1.0)
        psnr = peak_signal_noise_ratio(clean32, u, data_range=1.0)
        ssim = structural_similarity(clean32, u, data_range=1.0)
        print(f"{beta:5.1f} {w:7.3f} {info.method:>7} {info.iterations:6d} {psnr:7.2f} "
              f"{ssim:6.3f} {t:8.3f}")
        results.append((u, f"beta = {beta:g}: PSNR {psnr:.2f} dB"))

    if not args.no_figure:
        tiles = [(np.clip(noisy, 0, 1), f"noisy: PSNR {psnr0:.2f} dB")] + results
        panel = _labelled_panel([(t * 255 + 0.5).astype(np.uint8) for t, _ in tiles],
                                [label for _, label in tiles])
        path = os.path.abspath(args.output)
        try:
            _write_png(path, panel)
        except OSError as e:
            print(f"tvnumba demo: error: cannot write {path}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
        print(f"\nwrote {path}: " + " | ".join(label for _, label in tiles))
    return 0


def _labelled_panel(tiles, labels, strip=40):
    """The tiles side by side, each with its label on a white strip below it
    (Pillow's built-in font: Pillow comes with scikit-image)."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = tiles[0].shape
    canvas = Image.new("L", (w * len(tiles), h + strip), color=255)
    draw = ImageDraw.Draw(canvas)
    try:  # a scalable font (Pillow >= 10.1 with FreeType); else the small bitmap one
        font = ImageFont.load_default(size=24)
    except (TypeError, OSError, ImportError):
        font = ImageFont.load_default()
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        canvas.paste(Image.fromarray(tile), (k * w, 0))
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        draw.text((k * w + (w - (right - left)) // 2, h + (strip - (bottom - top)) // 2 - top),
                  label, fill=0, font=font)
    return np.asarray(canvas)


def _write_png(path, img):
    """Write atomically: a temporary file in the same folder, then os.replace."""
    import imageio.v3 as iio

    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=folder)
    os.close(fd)
    try:
        iio.imwrite(tmp, img, extension=".png")
        # mkstemp makes the file private (0600); give it the usual umask mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
