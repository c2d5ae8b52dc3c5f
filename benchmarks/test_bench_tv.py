"""TV kernels: ``tvnumba.tv`` (value) and ``tvnumba.tv_value_and_grad`` (value + gradient
into a preallocated ``out``) against baselines measured in the same run; the compat losses;
the first call in a fresh process.

Kernels: float32 uniform [0, 1) input (seed 0), unit spacing, no smoothing; β ∈ {1, 1.7, 2};
isotropic and anisotropic.  Shapes (small / full): 2-D 512² / 2048², 3-D 64³ / 256³ (long
1-D signals: the memory suite).  Each group:

* ``tvnumba``: the Numba kernel;
* ``numpy`` (baseline): ``benchlib.numpy_tv``, the same formula in whole-array NumPy;
* ``copy`` (baseline): ``np.copyto`` of the bytes the kernel must move at least, the memory
  floor: ``tv`` reads ``u`` once (half of ``u`` copied into a half-size buffer: read + write
  = ``u.nbytes``), ``tv_value_and_grad`` reads ``u`` and writes the gradient (``u`` copied
  into the gradient buffer).  ``GB/s`` = those bytes / median time.

Compat (``tvnumba.compat``): the PyTorch ``TVLoss`` value and gradient and
``tf.image.total_variation`` value and gradient on an NCHW / NHWC float32 batch (small
4×3×128×128, full 16×3×256×256) against the same formulas in NumPy and the copy floor.

Start-up (marker ``startup``): the first call of ``tv_value_and_grad`` (512² float32, β = 1)
and of ``denoise_tv_beta`` (camera 512² + noise, float32, β = 1) in a fresh Python process
with a warm Numba cache (the compiled kernels on disk from an earlier call), timed inside
the child, against the second call in the same process; ``import_s`` is ``import tvnumba``
in that child.  At the full size also with an empty cache (the compilation itself) and
scikit-image's first ``denoise_tv_chambolle`` call in a fresh process.  The command line:
``tvnumba denoise camera.png -o DIR`` (uint8 PNG, defaults) as a whole process, with an
empty Numba cache (each round a new one) against a warm one.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from benchlib import gbps, measure, numpy_tv, pick, record

import tvnumba
from tvnumba import compat

pytestmark = pytest.mark.kernels

BETAS = (1.0, 1.7, 2.0)
DIMS = ("2d", "3d")
_DATA: dict = {}


def shape_of(dim: str) -> tuple[int, ...]:
    n2 = pick(512, 2048)
    return {"2d": (n2, n2), "3d": (pick(64, 256),) * 3}[dim]


def data(dim: str):
    """float32 uniform [0, 1) input and a gradient buffer, made once per shape."""
    if dim not in _DATA:
        u = np.random.default_rng(0).random(shape_of(dim), dtype=np.float32)
        _DATA[dim] = (u, np.empty_like(u))
    return _DATA[dim]


def _name(shape) -> str:
    return "×".join(map(str, shape))


CASES = [(dim, job, beta, norm) for dim in DIMS for job in ("tv", "tv_value_and_grad")
         for beta in BETAS for norm in ("iso", "aniso")]


@pytest.mark.parametrize("impl", ["tvnumba", "numpy", "copy"])
@pytest.mark.parametrize("dim,job,beta,norm", CASES,
                         ids=[f"{d}-{j}-beta{b:g}-{n}" for d, j, b, n in CASES])
def test_tv(benchmark, dim, job, beta, norm, impl):
    u, grad = data(dim)
    iso = norm == "iso"
    shape = _name(u.shape)
    benchmark.group = f"{job} {shape} float32 β={beta:g} {norm}"
    if job == "tv":
        nbytes = u.nbytes
        half = u.reshape(-1)[: u.size // 2]
        buf = np.empty_like(half)
        fns = {"tvnumba": lambda: tvnumba.tv(u, beta, isotropic=iso),
               "numpy": lambda: numpy_tv(u, beta, iso, want_grad=False),
               "copy": lambda: np.copyto(buf, half)}
    else:
        nbytes = 2 * u.nbytes
        fns = {"tvnumba": lambda: tvnumba.tv_value_and_grad(u, beta, isotropic=iso, out=grad),
               "numpy": lambda: numpy_tv(u, beta, iso, want_grad=True),
               "copy": lambda: np.copyto(grad, u)}
    measure(benchmark, fns[impl])
    record(benchmark, impl, role="tvnumba" if impl == "tvnumba" else "baseline",
           table=f"{shape} float32", row=f"{job} β={beta:g} {norm}",
           **{"GB/s": gbps(benchmark, nbytes)})


# --------------------------------------------------------------------------- compat
def torch_numpy(x, weight=1.0, want_grad=False):
    """The PyTorch ``TVLoss`` formula in NumPy (NCHW), value or gradient."""
    n, c, h, w = x.shape
    dh = x[:, :, 1:, :] - x[:, :, :-1, :]
    dw = x[:, :, :, 1:] - x[:, :, :, :-1]
    ch, cw = c * (h - 1) * w, c * h * (w - 1)
    if not want_grad:
        return 2 * weight * (float((dh * dh).sum(dtype=np.float64)) / ch
                             + float((dw * dw).sum(dtype=np.float64)) / cw) / n
    g = np.zeros_like(x)
    kh, kw = x.dtype.type(4 * weight / (n * ch)), x.dtype.type(4 * weight / (n * cw))
    g[:, :, 1:, :] += kh * dh
    g[:, :, :-1, :] -= kh * dh
    g[:, :, :, 1:] += kw * dw
    g[:, :, :, :-1] -= kw * dw
    return g


def tf_numpy(x, want_grad=False):
    """``tf.image.total_variation`` in NumPy (NHWC): one value per image, or the
    gradient of their sum (sign of each difference, 0 at ties)."""
    dh = x[:, 1:, :, :] - x[:, :-1, :, :]
    dw = x[:, :, 1:, :] - x[:, :, :-1, :]
    if not want_grad:
        return (np.abs(dh).sum(axis=(1, 2, 3), dtype=np.float64)
                + np.abs(dw).sum(axis=(1, 2, 3), dtype=np.float64))
    g = np.zeros_like(x)
    sh, sw = np.sign(dh), np.sign(dw)
    g[:, 1:] += sh
    g[:, :-1] -= sh
    g[:, :, 1:] += sw
    g[:, :, :-1] -= sw
    return g


COMPAT = {
    "torch_tv_loss": (lambda x: compat.torch_tv_loss(x), lambda x: torch_numpy(x), False),
    "torch_tv_loss_grad": (lambda x: compat.torch_tv_loss_grad(x),
                           lambda x: torch_numpy(x, want_grad=True), True),
    "tf_total_variation": (lambda x: compat.tf_total_variation(x), lambda x: tf_numpy(x),
                           False),
    "tf_total_variation_grad": (lambda x: compat.tf_total_variation_grad(x),
                                lambda x: tf_numpy(x, want_grad=True), True),
}


@pytest.mark.parametrize("impl", ["tvnumba", "numpy", "copy"])
@pytest.mark.parametrize("func", list(COMPAT))
def test_compat(benchmark, func, impl):
    n, s = pick((4, 128), (16, 256))
    shape = (n, 3, s, s) if func.startswith("torch") else (n, s, s, 3)
    if ("compat", shape) not in _DATA:
        _DATA["compat", shape] = np.random.default_rng(0).random(shape, dtype=np.float32)
    x = _DATA["compat", shape]
    ours, ref, grad = COMPAT[func]
    out = np.empty_like(x)
    half = x.reshape(-1)[: x.size // 2]
    buf = np.empty_like(half)
    floor = (lambda: np.copyto(out, x)) if grad else (lambda: np.copyto(buf, half))
    layout = "NCHW" if func.startswith("torch") else "NHWC"
    benchmark.group = f"compat {func} {layout} {'×'.join(map(str, shape))} float32"
    measure(benchmark, {"tvnumba": lambda: ours(x), "numpy": lambda: ref(x),
                        "copy": floor}[impl])
    record(benchmark, impl, role="tvnumba" if impl == "tvnumba" else "baseline",
           table=f"compat losses, {n} images of 3×{s}×{s} float32", row=func)


def test_compat_matches_formula():
    """The NumPy formulas above are those of tvnumba.compat (so the timings compare
    the same computation)."""
    x = np.random.default_rng(1).random((2, 3, 9, 7))
    np.testing.assert_allclose(compat.torch_tv_loss(x), torch_numpy(x), rtol=1e-12)
    np.testing.assert_allclose(compat.torch_tv_loss_grad(x), torch_numpy(x, want_grad=True),
                               rtol=1e-12, atol=1e-15)
    y = x.transpose(0, 2, 3, 1).copy()
    np.testing.assert_allclose(compat.tf_total_variation(y), tf_numpy(y), rtol=1e-12)
    np.testing.assert_allclose(compat.tf_total_variation_grad(y), tf_numpy(y, want_grad=True),
                               atol=1e-12)
    u = x[0, 0].astype(np.float32)
    for beta in BETAS:
        for iso in (True, False):
            v, g = tvnumba.tv_value_and_grad(u, beta, isotropic=iso)
            v_np, g_np = numpy_tv(u, beta, iso)
            np.testing.assert_allclose(v, v_np, rtol=1e-5)
            np.testing.assert_allclose(g, g_np, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- start-up
CHILD = r"""
import sys, time
t0 = time.perf_counter()
import numpy as np
job = sys.argv[1]
if job == "skimage":
    from skimage.restoration import denoise_tv_chambolle
else:
    import tvnumba
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
if job == "tv_value_and_grad":
    u = rng.random((512, 512), dtype=np.float32)
    out = np.empty_like(u)
    call = lambda: tvnumba.tv_value_and_grad(u, 1.0, out=out)
else:
    from skimage import data, img_as_float
    f = (img_as_float(data.camera()) + 0.1 * rng.standard_normal((512, 512))).astype(np.float32)
    if job == "skimage":
        call = lambda: denoise_tv_chambolle(f, weight=0.1)
    else:
        call = lambda: tvnumba.denoise_tv_beta(f, 0.1, 1.0)
print(f"ready {t_import!r}", flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    call()
    print(repr(time.perf_counter() - t), flush=True)
"""


class Child:
    """A fresh Python running ``CHILD`` for ``job``: each :meth:`call` makes it call the
    job once and returns the seconds the child measured around the call."""

    def __init__(self, job: str, env=None):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, job], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "ready":
            self.close()
            raise RuntimeError(f"the child for {job!r} did not start")
        self.import_s = float(line[1])

    def call(self) -> float:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc.wait(timeout=60)


STARTUP = [("tv_value_and_grad", "first"), ("tv_value_and_grad", "second"),
           ("denoise_tv_beta", "first"), ("denoise_tv_beta", "second")]
STARTUP_FULL = [("tv_value_and_grad", "cold"), ("denoise_tv_beta", "cold"),
                ("denoise_tv_beta", "skimage")]
LABELS = {"first": "first call, fresh process, warm cache",
          "second": "second call, same process",
          "cold": "first call, fresh process, empty cache (compiles)",
          "skimage": "skimage denoise_tv_chambolle, first call, fresh process"}


@pytest.mark.startup
@pytest.mark.parametrize("job,which", STARTUP + pick([], STARTUP_FULL),
                         ids=lambda v: v)
def test_first_call(benchmark, job, which, tmp_path):
    what = {"tv_value_and_grad": "tv_value_and_grad 512² float32 β=1",
            "denoise_tv_beta": "denoise_tv_beta camera 512² float32 β=1 weight 0.1"}[job]
    benchmark.group = f"first call in a fresh process: {what}"
    if which != "cold":
        # the warm cache: one fresh process has run the call (and written the cache)
        warm = Child(job)
        warm.call()
        warm.close()
    child_job = "skimage" if which == "skimage" else job
    measured, imports = [], []

    def setup():
        if which == "cold":  # every round compiles from an empty cache
            cache = tempfile.mkdtemp(dir=tmp_path)
            child = Child(child_job, dict(os.environ, NUMBA_CACHE_DIR=cache))
        else:
            child = Child(child_job)
        imports.append(child.import_s)
        if which == "second":
            child.call()
        return (child,), {}

    def target(child):
        measured.append(child.call())

    rounds = {"first": pick(3, 5), "second": pick(3, 5), "cold": 1, "skimage": pick(3, 5)}
    benchmark.pedantic(target, setup=setup, teardown=lambda child: child.close(),
                       rounds=rounds[which], iterations=1)
    record(benchmark, LABELS[which], role="baseline" if which == "second" else
           "tvnumba" if which != "skimage" else "other",
           time_s=statistics.median(measured), import_s=statistics.median(imports))


@pytest.mark.startup
@pytest.mark.parametrize("cache", ["warm", "empty"])
def test_command_line_start(benchmark, cache, tmp_path):
    """``tvnumba denoise camera.png`` as a job script runs it, the whole process timed."""
    import imageio.v3 as iio
    from skimage import data

    png = tmp_path / "camera.png"
    iio.imwrite(png, data.camera())
    benchmark.group = "command line: tvnumba denoise camera.png (512² uint8), whole process"
    warm_dir = str(tmp_path / "warm-cache")

    def run(cache_dir):
        out = tempfile.mkdtemp(dir=tmp_path)
        subprocess.run([sys.executable, "-m", "tvnumba", "denoise", str(png), "-o", out],
                       env=dict(os.environ, NUMBA_CACHE_DIR=cache_dir), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    if cache == "warm":
        run(warm_dir)  # fills the cache
        benchmark.pedantic(run, args=(warm_dir,), rounds=pick(2, 3), iterations=1)
        record(benchmark, "warm cache", role="baseline")
    else:
        benchmark.pedantic(run, setup=lambda: ((tempfile.mkdtemp(dir=tmp_path),), {}),
                           rounds=pick(1, 3), iterations=1)
        record(benchmark, "empty cache (compiles)")
