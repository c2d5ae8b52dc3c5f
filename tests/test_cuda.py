"""The CUDA path (``device="cuda"`` and device arrays) against the float64 reference.

Runs in Numba's CUDA simulator in CI, in a pytest process of its own::

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q -m cuda tests/test_cuda.py

and on a real GPU when one is present (then the ``gpu`` tests run too).  Without either,
the module is skipped as a whole (without importing ``numba.cuda``).

The simulator runs the real kernel code in Python, one thread per Python thread, so the
shapes are small (~120 pixels) and ``THREADS_PER_BLOCK`` is shrunk to 32, which makes every
input span several blocks: the shared-memory reduction and the per-block atomic add are
exercised across blocks.  ``MAX_BLOCKS`` is shrunk in some tests to exercise the grid-stride
loops over pixels and batch items.

Tolerances: as in ``test_tv.py`` (float64: ``rtol = 1e-9``; float32: ``rtol = 1e-5``;
gradient ``atol = rtol * ref_grad_scale``).
"""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import numpy as np
import pytest

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "0").strip() not in ("", "0")


def _cuda_present() -> bool:
    if SIM:
        return True
    # Cheap checks first, so that a machine without a driver never imports numba.cuda
    # into the CPU test process.
    if ctypes.util.find_library("cuda") is None and not os.path.exists("/dev/nvidiactl"):
        return False
    try:  # pragma: no cover - machines with a driver
        # through tvnumba's module: it makes numba-cuda importable with NumPy 2.5
        from tvnumba.backends.cuda._launch import cuda

        return cuda is not None and bool(cuda.is_available())
    except Exception:  # pragma: no cover
        return False


if not _cuda_present():
    pytest.skip("needs a CUDA GPU or NUMBA_ENABLE_CUDASIM=1", allow_module_level=True)

from numba import cuda  # noqa: E402
from numpy.testing import assert_allclose, assert_array_equal  # noqa: E402

import tvnumba  # noqa: E402
from reference import ref_grad_scale, ref_tv, ref_tv_grad  # noqa: E402
from tvnumba import _config  # noqa: E402
from tvnumba.backends.cuda import _launch, tv_kernels  # noqa: E402
from tvnumba.backends.cpu.tv_kernels import beta_mode  # noqa: E402

REAL_GPU = not SIM
pytestmark = [pytest.mark.cuda]
gpu_only = pytest.mark.skipif(not REAL_GPU, reason="needs a real GPU (not the simulator)")

RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-5}


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """32 threads per block and strips of 3 rows: tiny inputs span several blocks
    and several strips."""
    monkeypatch.setattr(_config, "THREADS_PER_BLOCK", 32)
    monkeypatch.setattr(_config, "MAX_BLOCKS", None)
    monkeypatch.setattr(tv_kernels, "STRIP_ROWS", 3)


def grad_dtype(dtype):
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize <= 4 else np.dtype(
        np.float64)


def data(rng, shape, dtype="float64"):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0, 100, shape).astype(dtype)
    return (rng.standard_normal(shape) * 1.5).astype(dtype)


def host(a):
    """A device array's values on the host (NumPy passes through)."""
    if isinstance(a, np.ndarray):
        return a
    return a.copy_to_host()


def check(u_host, value, grad, **kw):
    """Compare (value, grad) of ``u_host`` with the reference."""
    gdt = grad_dtype(u_host.dtype)
    rtol = RTOL[gdt]
    rv = ref_tv(u_host, **kw)
    if kw.get("reduction") == "none":
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
        assert value.shape == np.shape(rv)
    else:
        assert isinstance(value, float)
    assert_allclose(value, rv, rtol=rtol, atol=0)
    if grad is not None:
        g = host(grad)
        assert g.shape == u_host.shape and g.dtype == gdt
        atol = rtol * ref_grad_scale(u_host, **kw)
        assert_allclose(g, ref_tv_grad(u_host, **kw), rtol=rtol, atol=atol)


# Each case: shape, keywords.  Covers 1-D/2-D/3-D, batch and channel axes, iso/aniso,
# beta in {1, 2, 0.6, 1.7}, smoothing, spacing and the three reductions.
CASES = [
    ((40,), dict()),
    ((40,), dict(beta=2.0, smoothing=0.3)),
    ((37,), dict(beta=0.6, smoothing=0.05, isotropic=False)),
    ((12, 10), dict()),
    ((12, 10), dict(beta=1.7, spacing=(0.5, 2.0))),
    ((12, 10), dict(beta=0.6, isotropic=False, smoothing=0.2)),
    ((12, 10), dict(beta=2, isotropic=False, reduction="mean")),
    ((11, 9), dict(beta=1, isotropic=False, smoothing=0.1, spacing=0.7)),
    ((4, 5, 6), dict()),
    ((4, 5, 6), dict(beta=1.7, smoothing=0.1, spacing=(1.0, 0.5, 2.0))),
    ((4, 5, 6), dict(beta=2.0, isotropic=False, spacing=(2.0, 1.0, 0.5))),
    ((4, 5, 6), dict(beta=0.6, isotropic=False, reduction="mean")),
    ((3, 6, 7), dict(axes=(1, 2), reduction="none")),  # batch of three 2-D images
    ((3, 6, 7), dict(axes=(1, 2), beta=1.7, isotropic=False, reduction="none")),
    ((6, 7, 3), dict(channel_axis=-1)),  # colour TV, HWC
    ((6, 7, 3), dict(channel_axis=2, beta=0.6, isotropic=False, smoothing=0.1)),
    ((2, 3, 5, 6), dict(channel_axis=1, axes=(2, 3), beta=1.7, reduction="none")),
    ((2, 3, 5, 6), dict(channel_axis=1, axes=(2, 3), beta=2.0, reduction="mean")),
    ((5, 4, 3), dict(axes=(0, 2), beta=1.0, smoothing=0.2, reduction="none")),  # batch between
    ((2, 9, 3, 4), dict(axes=(1,), channel_axis=3, beta=1.7, reduction="none")),
]


def _case_id(case):
    shape, kw = case
    return "x".join(map(str, shape)) + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_reference_host_input(case, dtype, rng):
    """NumPy in, device="cuda": value-only and fused kernels; NumPy out."""
    shape, kw = case
    u = data(rng, shape, dtype)
    value, grad = tvnumba.tv_value_and_grad(u, device="cuda", **kw)
    assert isinstance(grad, np.ndarray) and grad.flags.c_contiguous
    check(u, value, grad, **kw)
    assert_allclose(tvnumba.tv(u, device="cuda", **kw), value, rtol=RTOL[grad.dtype], atol=0)


@pytest.mark.parametrize("case", CASES[::3], ids=_case_id)
def test_matches_reference_device_input(case, rng):
    """Numba device array in -> device array of the same kind out (device=None infers)."""
    shape, kw = case
    u = data(rng, shape, "float32")
    d = cuda.to_device(u)
    value, grad = tvnumba.tv_value_and_grad(d, **kw)
    assert type(grad) is type(d)
    check(u, value, grad, **kw)
    assert_allclose(tvnumba.tv(d, **kw), value, rtol=1e-5, atol=0)
    assert_array_equal(host(d), u)  # input untouched


# --------------------------------------------------------------------------- dtypes, layouts
@pytest.mark.parametrize("dtype", ["float16", "int16", "uint8", "bool", ">f8", ">f4"])
def test_dtype_rules_host(dtype, rng):
    u = data(rng, (9, 8), dtype)
    value, grad = tvnumba.tv_value_and_grad(u, beta=1.7, device="cuda")
    assert grad.dtype == grad_dtype(dtype)
    check(u, value, grad, beta=1.7)


@pytest.mark.parametrize("dtype", ["float16", "int32", "bool"])
def test_dtype_rules_device(dtype, rng):
    """Casting on the device (the strided copy kernel)."""
    u = data(rng, (9, 8), dtype)
    value, grad = tvnumba.tv_value_and_grad(cuda.to_device(u), beta=0.6, smoothing=0.1)
    assert grad.dtype == grad_dtype(dtype)
    check(u, value, grad, beta=0.6, smoothing=0.1)


def _layouts(a):
    big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
    strided = big[tuple(slice(1, None, 2) for _ in a.shape)]
    strided[...] = a
    neg = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
        (slice(None, None, -1),) * a.ndim]
    perm = np.ascontiguousarray(np.moveaxis(a, 0, -1))
    return {
        "F": np.asfortranarray(a),
        "strided": strided,
        "negative": neg,
        "permuted": np.moveaxis(perm, -1, 0),
    }


@pytest.mark.parametrize("layout", ["F", "strided", "negative", "permuted"])
def test_layouts_host(layout, rng):
    u = data(rng, (3, 7, 6), "float64")
    v = _layouts(u)[layout]
    assert_array_equal(v, u)
    kw = dict(axes=(1, 2), channel_axis=None, beta=1.7, reduction="none")
    value, grad = tvnumba.tv_value_and_grad(v, device="cuda", **kw)
    assert grad.flags.c_contiguous
    check(u, value, grad, **kw)


@pytest.mark.parametrize("layout", ["strided", "negative", "transposed"])
def test_layouts_device(layout, rng):
    """Non-contiguous device arrays: canonical strided views, no copy."""
    u = data(rng, (4, 7, 6), "float64")
    if layout == "strided":
        big = np.zeros((9, 15, 13))
        big[1::2, 1::2, 1::2] = u
        d = cuda.to_device(big)[1::2, 1::2, 1::2]
    elif layout == "negative":
        d = cuda.to_device(np.ascontiguousarray(u[::-1, :, ::-1]))[::-1, :, ::-1]
    else:
        d = cuda.to_device(np.ascontiguousarray(u.transpose(2, 0, 1)))
        d = _launch.view(d, (4, 7, 6), (d.strides[1], d.strides[2], d.strides[0]))
    kw = dict(axes=(1, 2), beta=0.6, isotropic=False, smoothing=0.1, reduction="none")
    value, grad = tvnumba.tv_value_and_grad(d, **kw)
    check(u, value, grad, **kw)


def test_non_mergeable_batch_axes_device(rng):
    """Batch axes around a spatial axis: input gathered and gradient scattered by the
    copy kernel (no canonical view exists)."""
    u = data(rng, (3, 10, 4), "float32")
    kw = dict(axes=(1,), beta=1.7, reduction="none")
    d = cuda.to_device(u)
    assert _launch.canonical(d, tvnumba._validate.make_plan(d, 1.7, axes=(1,))) is None
    value, grad = tvnumba.tv_value_and_grad(d, **kw)
    check(u, value, grad, **kw)


def test_out_argument(rng):
    u = data(rng, (3, 6, 5), "float64")
    kw = dict(axes=(1, 2), beta=1.7, reduction="none")
    ref = ref_tv_grad(u, **kw)
    # NumPy in, NumPy out, also written through a transposing view
    out = np.empty_like(u)
    value, g = tvnumba.tv_value_and_grad(u, device="cuda", out=out, **kw)
    assert g is out
    assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    out_f = np.asfortranarray(np.empty_like(u))
    assert tvnumba.tv_grad(u, device="cuda", out=out_f, **kw) is out_f
    assert_allclose(out_f, ref, rtol=1e-9, atol=1e-12)
    # device in, device out (a view: written in place; not a view: scattered)
    d = cuda.to_device(u)
    outd = cuda.device_array(u.shape, np.float64)
    assert tvnumba.tv_grad(d, out=outd, **kw) is outd
    assert_allclose(host(outd), ref, rtol=1e-9, atol=1e-12)
    kw2 = dict(axes=(1,), beta=1.7, reduction="none")
    outd2 = cuda.device_array(u.shape, np.float64)
    assert tvnumba.tv_grad(d, out=outd2, **kw2) is outd2
    assert_allclose(host(outd2), ref_tv_grad(u, **kw2), rtol=1e-9, atol=1e-12)


def test_grid_stride_loops(monkeypatch, rng):
    """One block for all pixels and fewer blocks than batch items: every thread walks
    several pixels (incremental index carry) and every block several batch items."""
    monkeypatch.setattr(_config, "MAX_BLOCKS", 2)
    u = data(rng, (3, 5, 7, 4), "float64")  # 140 pixels per item > 32 threads
    for kw in (dict(axes=(1, 2, 3), beta=1.7, reduction="none"),
               dict(axes=(1, 2, 3), beta=1.0, isotropic=False, reduction="none")):
        value, grad = tvnumba.tv_value_and_grad(u, device="cuda", **kw)
        check(u, value, grad, **kw)
    assert _launch.grid(3, 140, 32) == (1, 2)


def test_grid_shape():
    assert _launch.grid(1, 120, 32) == (4, 1)  # several blocks for a tiny input
    assert _launch.grid(5, 1, 32) == (1, 5)


def test_flat_and_single_pixel(rng):
    """Zero differences: weight 0 (no NaN/Inf for beta < 1); s^beta per anisotropic term."""
    u = np.zeros((6, 5))
    u[:, 3:] = 1.0
    for beta in (0.6, 1.0, 2.0):
        for iso in (True, False):
            value, grad = tvnumba.tv_value_and_grad(u, beta=beta, isotropic=iso, device="cuda")
            assert np.isfinite(grad).all()
            check(u, value, grad, beta=beta, isotropic=iso)
    one = np.array([3.0])
    assert tvnumba.tv(one, device="cuda", smoothing=0.5, isotropic=False) == 0.5


# --------------------------------------------------------------------------- errors
# The simulator computes the kernels with NumPy scalars, which warn on NaN/Inf arithmetic.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_nonfinite_input_raises(rng):
    u = data(rng, (6, 5), "float32")
    u[2, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf"):
        tvnumba.tv(u, device="cuda")
    u[2, 4] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        tvnumba.tv_grad(cuda.to_device(u))
    single = np.array([np.inf])
    with pytest.raises(ValueError, match="NaN or Inf"):
        tvnumba.tv(single, device="cuda")


def test_validation_errors_same_as_cpu(rng):
    u = data(rng, (5, 4), "float64")
    d = cuda.to_device(u)
    for arr in (u, d):
        with pytest.raises(ValueError, match="beta"):
            tvnumba.tv(arr, beta=0, device="cuda")
        with pytest.raises(ValueError, match="axes"):
            tvnumba.tv(arr, axes=(2,), device="cuda")
        with pytest.raises(ValueError, match="spacing"):
            tvnumba.tv(arr, spacing=(1, 2, 3), device="cuda")
        with pytest.raises(ValueError, match="reduction"):
            tvnumba.tv(arr, reduction="max", device="cuda")
    with pytest.raises(ValueError, match="shape"):
        tvnumba.tv_grad(d, out=cuda.device_array((4, 5), np.float64))
    with pytest.raises(ValueError, match="dtype"):
        tvnumba.tv_grad(d, out=cuda.device_array((5, 4), np.float32))
    with pytest.raises(TypeError, match="device array"):
        tvnumba.tv_grad(d, out=np.empty((5, 4)))
    with pytest.raises(TypeError, match="NumPy"):
        tvnumba.tv_grad(u, device="cuda", out=cuda.device_array((5, 4), np.float64))
    with pytest.raises(ValueError, match="device='cpu'"):
        tvnumba.tv(d, device="cpu")


def test_more_than_three_spatial_axes(rng):
    u = data(rng, (3, 3, 3, 4), "float64")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(NotImplementedError, match="CuPy"):
            tvnumba.tv(u, device="cuda")
    else:  # pragma: no cover - needs a GPU and CuPy
        value, grad = tvnumba.tv_value_and_grad(u, device="cuda", beta=1.7)
        check(u, value, grad, beta=1.7)


def test_no_gpu_message(monkeypatch):
    monkeypatch.setattr(_launch, "available", lambda: False)
    with pytest.raises(RuntimeError, match=r"no CUDA GPU.*cuda.*extra.*numba-cuda.*cupy"):
        tvnumba.tv(np.ones(4), device="cuda")


def test_threads_per_block_must_be_power_of_two(monkeypatch):
    monkeypatch.setattr(_config, "THREADS_PER_BLOCK", 48)
    with pytest.raises(ValueError, match="THREADS_PER_BLOCK"):
        tvnumba.tv(np.ones(4), device="cuda")


def test_import_is_lazy():
    """``import tvnumba`` never imports numba.cuda."""
    code = ("import sys, tvnumba; "
            "print(any(m == 'numba.cuda' or m.startswith('numba.cuda.') for m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert res.stdout.strip() == "False"


# --------------------------------------------------------------------------- dispatch
def test_no_host_round_trip(monkeypatch, rng):
    """Device in: the only device->host copy is the per-batch value vector (B + 1 floats)."""
    u = data(rng, (3, 6, 5), "float32")
    d = cuda.to_device(u)
    copies = []
    cls = type(d)
    original = cls.copy_to_host

    def spy(self, *args, **kwargs):
        copies.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "copy_to_host", spy)
    value, grad = tvnumba.tv_value_and_grad(d, axes=(1, 2), reduction="none")
    assert copies == [(4,)]
    monkeypatch.undo()
    check(u, value, grad, axes=(1, 2), reduction="none")


def test_one_kernel_per_specialisation_not_per_shape(rng):
    """The factory is keyed by the specialisation; a new shape reuses the dispatcher
    (and, on a GPU, its compiled overload)."""
    tv_kernels.make_strip_kernel.cache_clear()
    for shape in ((12, 10), (7, 9)):
        tvnumba.tv_value_and_grad(data(rng, shape, "float32"), beta=1.7, device="cuda")
    assert tv_kernels.make_strip_kernel.cache_info().currsize == 1
    kernel = tv_kernels.make_strip_kernel(2, beta_mode(1.7), True, True, 32, 3, "float32")
    if REAL_GPU:  # pragma: no cover - the simulator keeps no overloads
        assert len(kernel.overloads) == 1


# --------------------------------------------------------------------------- real GPU only
@gpu_only
def test_cupy_in_cupy_out(rng):  # pragma: no cover - needs a GPU
    cupy = pytest.importorskip("cupy")
    u = data(rng, (2, 33, 47), "float32")
    c = cupy.asarray(u)
    kw = dict(axes=(1, 2), beta=1.7, smoothing=0.01, reduction="none")
    value, grad = tvnumba.tv_value_and_grad(c, **kw)
    assert isinstance(grad, cupy.ndarray) and grad.dtype == np.float32
    check(u, value, cupy.asnumpy(grad), **kw)
    out = cupy.empty_like(c)
    assert tvnumba.tv_grad(c, out=out, **kw) is out
    # channel-last colour images (a strided canonical view)
    rgb = cupy.asarray(data(rng, (31, 29, 3), "float32"))
    v2, g2 = tvnumba.tv_value_and_grad(rgb, channel_axis=-1)
    check(cupy.asnumpy(rgb), v2, cupy.asnumpy(g2), channel_axis=-1)


@gpu_only
@pytest.mark.parametrize("shape, kw", [
    ((1024, 1536), dict(beta=1.0)),
    ((1024, 1536), dict(beta=1.7, isotropic=False)),
    ((96, 100, 110), dict(beta=1.7, smoothing=0.01)),
    ((8, 256, 300), dict(axes=(1, 2), beta=2.0, reduction="none")),
])
def test_large_shapes(shape, kw, rng, monkeypatch):  # pragma: no cover - needs a GPU
    monkeypatch.setattr(_config, "THREADS_PER_BLOCK", 256)
    for dtype in ("float64", "float32"):
        u = data(rng, shape, dtype)
        value, grad = tvnumba.tv_value_and_grad(cuda.to_device(u), **kw)
        check(u, value, grad, **kw)


@gpu_only
def test_float32_device_reduction_accuracy(rng, monkeypatch):  # pragma: no cover - needs a GPU
    """4096² float32 terms summed on the device in float64: relative error ~1e-7 (the
    per-term float32 rounding), far below what a float32 accumulation would give."""
    monkeypatch.setattr(_config, "THREADS_PER_BLOCK", 256)
    u = (rng.random((4096, 4096)) + 1e3).astype(np.float32)  # large offset, small diffs
    value = tvnumba.tv(cuda.to_device(u), beta=1.0)
    assert_allclose(value, ref_tv(u, beta=1.0), rtol=2e-6)


@gpu_only
@pytest.mark.parametrize("method,beta,smoothing", [("cp", 1.0, 0.0), ("lbfgs", 1.5, 0.0),
                                                   ("dct", 2.0, 0.0), ("mm", 0.6, 0.02)])
def test_denoise_cupy_end_to_end(method, beta, smoothing, rng):  # pragma: no cover - GPU
    """CuPy in, CuPy out, every solver; same objective as the CPU solve."""
    cupy = pytest.importorskip("cupy")
    from tvnumba.restoration import denoise_tv_beta

    f = data(rng, (3, 70, 65), "float32")
    kw = dict(method=method, smoothing=smoothing, channel_axis=0, eps=1e-5, return_info=True)
    u_gpu, info_gpu = denoise_tv_beta(cupy.asarray(f), 0.1, beta, **kw)
    assert isinstance(u_gpu, cupy.ndarray) and u_gpu.dtype == np.float32
    u_cpu, info_cpu = denoise_tv_beta(f, 0.1, beta, **kw)
    assert info_gpu.method == method and info_gpu.converged
    assert_allclose(info_gpu.objective, info_cpu.objective, rtol=1e-4)
    # device="cuda" on a NumPy image: solved there, NumPy back
    u_host = denoise_tv_beta(f, 0.1, beta, device="cuda", **kw)[0]
    assert isinstance(u_host, np.ndarray) and u_host.shape == f.shape


@gpu_only
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_poisson_cupy_end_to_end(dtype):  # pragma: no cover - GPU
    """Counts on CuPy, noise='poisson': denoising and deconvolution solved on the card
    follow the host solve (same certificate, objective within the dtype's rounding)."""
    cupy = pytest.importorskip("cupy")
    from tvnumba.restoration import deconvolve_tv_beta, denoise_tv_beta

    rng = np.random.default_rng(5)
    x = np.full((48, 44), 3.0)
    x[10:30, 8:25] = 20.0
    y = rng.poisson(x + 1.0).astype(dtype)
    g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
    psf = np.outer(g, g) / np.outer(g, g).sum()
    kw = dict(noise="poisson", background=1.0, return_info=True)
    for solve in (lambda a: denoise_tv_beta(a, 0.5, **kw),
                  lambda a: deconvolve_tv_beta(a, psf, 0.3, **kw)):
        u_gpu, info_gpu = solve(cupy.asarray(y))
        u_cpu, info_cpu = solve(y)
        assert isinstance(u_gpu, cupy.ndarray) and u_gpu.dtype == np.dtype(dtype)
        assert info_gpu.converged and info_gpu.bound and float(u_gpu.min()) >= 0
        # both within their gap of the optimum, plus the dtype's rounding
        rtol = max(info_gpu.gap, info_cpu.gap) + (1e-4 if dtype == "float32" else 1e-9)
        assert_allclose(info_gpu.objective, info_cpu.objective, rtol=rtol)


def test_denoise_device_array_rules(monkeypatch, rng):
    """A Numba device array is a GPU image: device='cpu' refuses it, and without CuPy the
    error names the extra to install."""
    import sys

    from tvnumba.restoration import denoise_tv_beta

    d = cuda.to_device(data(rng, (9, 8), "float32"))
    with pytest.raises(ValueError, match="device='cpu'"):
        denoise_tv_beta(d, 0.1, device="cpu")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match=r"CuPy.*tvnumba\[cuda\]"):
        denoise_tv_beta(d, 0.1)


# --------------------------------------------------------------------------- ROF solver kernels
@pytest.mark.parametrize("shape,nd,kw", [
    ((1, 1, 1, 1, 19), 1, {}),
    ((2, 1, 1, 6, 7), 2, {}),
    ((1, 3, 1, 5, 6), 2, dict(isotropic=False)),
    ((1, 2, 4, 5, 3), 3, dict(inv_spacing=(0.5, 1.0, 2.0))),
])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cp_cuda_matches_cpu_iterates(shape, nd, kw, dtype, rng):
    """The CUDA Chambolle-Pock passes give the Numba CPU passes' iterates, gaps and
    objectives (same driver, a fixed number of iterations)."""
    from tvnumba.backends.cpu import CPNumba
    from tvnumba.backends.cuda.solver_kernels import CPCuda

    f = data(rng, shape, dtype)
    plan = canonical_plan(f, nd, **kw)
    seen = {"cpu": [], "gpu": []}
    results = {}
    for name, state in (("cpu", CPNumba(f, 0.2, plan, identity=True)),
                        ("gpu", CPCuda(cuda.to_device(f), 0.2, plan))):
        u, res = run_cp(state, plan, 0.2, eps=1e-12, max_iter=12, check_every=4,
                        callback=lambda k, u, F, name=name: seen[name].append(F))
        results[name] = (u if isinstance(u, np.ndarray) else u.copy_to_host(), res)
    (u_c, r_c), (u_g, r_g) = results["cpu"], results["gpu"]
    tol = RTOL[np.dtype(dtype)] * 100
    assert_allclose(u_g, u_c, rtol=tol, atol=tol)
    assert r_g.iterations == r_c.iterations == 12
    assert_allclose(seen["gpu"], seen["cpu"], rtol=tol)
    assert_allclose(r_g.gap, r_c.gap, rtol=1e-3, atol=tol)


@pytest.mark.parametrize("shape,nd,kw", [
    ((1, 1, 1, 1, 19), 1, {}),
    ((2, 1, 1, 6, 7), 2, {}),
    ((2, 1, 1, 6, 7), 2, dict(isotropic=False)),
    ((1, 1, 4, 5, 3), 3, dict(inv_spacing=(0.5, 1.0, 2.0))),
    ((2, 1, 3, 4, 5), 3, dict(isotropic=False, inv_spacing=(2.0, 1.0, 0.5))),
])
def test_cp_cuda_one_channel_kernels_match_the_channel_loop(shape, nd, kw, rng, monkeypatch):
    """One channel runs the dual with its values in registers (one pass): the same
    iterates, gaps and objectives as the channel loop of colour images run on it
    (batches, 1-3 axes, iso/aniso, spacing)."""
    from tvnumba.backends.cuda import solver_kernels as sk

    f = data(rng, shape, "float64")
    plan = canonical_plan(f, nd, **kw)
    real = sk.make_cp_kernels
    results = {}
    for mono in (True, False):
        monkeypatch.setattr(sk, "make_cp_kernels",
                            lambda nd, iso, tpb, one, mono=mono: real(nd, iso, tpb, one and mono))
        state = sk.CPCuda(cuda.to_device(f), 0.2, plan)
        u, res = run_cp(state, plan, 0.2, eps=1e-12, max_iter=9, check_every=3)
        results[mono] = (u.copy_to_host(), res, state.p.copy_to_host())
    (u1, r1, p1), (u0, r0, p0) = results[True], results[False]
    assert_allclose(u1, u0, rtol=1e-13, atol=1e-14)
    assert_allclose(p1, p0, rtol=1e-13, atol=1e-14)
    assert r1.iterations == r0.iterations == 9
    assert_allclose([r1.objective, r1.gap], [r0.objective, r0.gap], rtol=1e-12, atol=1e-15)


def canonical_plan(f5, nd, inv_spacing=(1.0, 1.0, 1.0), isotropic=True):
    """The plan of a canonical ``(B, C, z, y, x)`` array with ``nd`` spatial axes."""
    from tvnumba._validate import make_plan

    return make_plan(f5, 1.0, axes=tuple(range(5 - nd, 5)), channel_axis=1,
                     spacing=tuple(1 / h for h in inv_spacing[3 - nd:]), isotropic=isotropic)


def run_cp(state, plan, weight, *, eps, max_iter, check_every=5, callback=None):
    """The primal-dual driver on a given state object (CPU or CUDA)."""
    from tvnumba.backends.cpu import CpuBackend
    from tvnumba.solvers._common import Problem
    from tvnumba.solvers.data_terms import Identity
    from tvnumba.solvers.primal_dual import _rof

    class Fixed(CpuBackend):
        def cp_state(self, f5, weight, plan, *, identity):
            return state

    problem = Problem(backend=Fixed(), plan=plan, data=Identity(state.f), weight=weight,
                      smoothing=0.0, eps=eps, max_iter=max_iter, callback=callback)
    return _rof(problem, check_every)


def test_cp_cuda_weight_zero_and_constant(rng):
    from tvnumba.backends.cuda.solver_kernels import CPCuda

    f = np.full((1, 1, 1, 4, 5), 0.3)
    plan = canonical_plan(f, 2)
    state = CPCuda(cuda.to_device(f), 0.5, plan)
    u, res = run_cp(state, plan, 0.5, eps=1e-3, max_iter=20)
    assert res.converged and res.iterations == 5 and res.gap <= 1e-12
    assert_allclose(u.copy_to_host(), f)


def test_out_overlapping_input_device(rng):
    """``out`` the input itself (device): computed aside, then written (no read-after-write)."""
    u = data(rng, (6, 7), "float64")
    d = cuda.to_device(u)
    grad = tvnumba.tv_grad(d, beta=1.3, out=d)
    assert grad is d
    assert_allclose(d.copy_to_host(), ref_tv_grad(u, beta=1.3), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- Radon projector
RADON_THETA = np.array([0.0, 45.0, 90.0, 137.5, 180.0])
RADON_CASES = [((12, 12), True), ((12, 12), False), ((9, 13), True), ((9, 13), False)]


def _radon_id(case):
    return f"{case[0][0]}x{case[0][1]}-circle={case[1]}"


def _rel(a, b):
    """max |a − b| relative to max |b|."""
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("case", RADON_CASES, ids=_radon_id)
def test_radon_kernels_match_cpu(case, rng):
    """The raw CUDA kernels on Numba device arrays against the CPU kernels, float64: the
    forward samples the same coordinates with the same expressions (one Python source for
    both targets), so it agrees to rounding; the adjoint (a gather) to summation order."""
    from tvnumba.backends.cpu import radon_kernels as cpu
    from tvnumba.backends.cuda import radon_kernels as K
    from tvnumba.operators import RadonGeometry

    shape, circle = case
    geom = RadonGeometry.create(shape, RADON_THETA, circle)
    P = geom.size
    cos_t, sin_t = geom.trig()
    dcos, dsin = cuda.to_device(cos_t), cuda.to_device(sin_t)
    sq = np.ascontiguousarray(geom.square(rng.standard_normal(shape)))
    ref = np.empty(geom.sinogram_shape)
    cpu.forward(sq, cos_t, sin_t, ref)
    out = cuda.device_array(geom.sinogram_shape)
    K.forward(cuda.to_device(sq), dcos, dsin, out)
    assert _rel(out.copy_to_host(), ref) <= 1e-12

    s = rng.standard_normal(geom.sinogram_shape)
    ref_a = np.empty((P, P))
    cpu.adjoint(s, cos_t, sin_t, P, 3, ref_a)
    out_a = cuda.device_array((P, P))
    K.adjoint(cuda.to_device(s), dcos, dsin, P, (0, 0), out_a)
    assert _rel(out_a.copy_to_host(), ref_a) <= 1e-12


@pytest.mark.parametrize("case", RADON_CASES, ids=_radon_id)
def test_radon_device_arrays_match_cpu(case, rng):
    """radon / radon_adjoint on Numba device arrays: device arrays out, the CPU results
    to rounding, the image cropped or padded on the device."""
    from tvnumba.operators import radon, radon_adjoint

    shape, circle = case
    x = rng.standard_normal(shape)
    sino = radon(cuda.to_device(x), RADON_THETA, circle)
    assert type(sino) is type(cuda.to_device(x))
    ref = radon(x, RADON_THETA, circle)
    assert sino.shape == ref.shape
    assert _rel(sino.copy_to_host(), ref) <= 1e-12
    s = rng.standard_normal(ref.shape)
    back = radon_adjoint(cuda.to_device(s), RADON_THETA, circle, shape=shape)
    ref_b = radon_adjoint(s, RADON_THETA, circle, shape=shape)
    assert back.shape == shape
    assert _rel(back.copy_to_host(), ref_b) <= 1e-12
    # device="cuda": NumPy in, NumPy out, same numbers
    host_s = radon(x, RADON_THETA, circle, device="cuda")
    assert isinstance(host_s, np.ndarray)
    assert_allclose(host_s, sino.copy_to_host(), rtol=0, atol=0)
    host_b = radon_adjoint(s, RADON_THETA, circle, shape=shape, device="cuda")
    assert isinstance(host_b, np.ndarray)
    assert_allclose(host_b, back.copy_to_host(), rtol=0, atol=0)


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("case", [((12, 12), True), ((9, 13), False)], ids=_radon_id)
def test_radon_cuda_dot_product(case, dtype, tol, rng):
    """<A u, s> == <u, Aᵀ s> for the CUDA pair (float64 to 1e-10 relative; float32 to
    1e-5 of ‖Au‖‖s‖, its storage rounding), with angles off the axes and beyond 180°."""
    from tvnumba.operators import radon, radon_adjoint

    shape, circle = case
    theta = np.concatenate([RADON_THETA, [-30.0, 211.7, 359.9]])
    u = rng.standard_normal(shape).astype(dtype)
    au = radon(cuda.to_device(u), theta, circle).copy_to_host()
    s = rng.standard_normal(au.shape).astype(dtype)
    ats = radon_adjoint(cuda.to_device(s), theta, circle, shape=shape).copy_to_host()
    assert au.dtype == ats.dtype == np.dtype(dtype)
    lhs = float(np.vdot(au.astype(np.float64), s))
    rhs = float(np.vdot(u.astype(np.float64), ats))
    scale = abs(lhs) if dtype == "float64" else np.linalg.norm(au) * np.linalg.norm(s)
    assert abs(lhs - rhs) <= tol * scale


def test_radon_device_validation(rng):
    """Device input: the errors the CPU path gives, plus float32/float64 only."""
    from tvnumba.operators import radon, radon_adjoint

    x = rng.standard_normal((8, 8))
    with pytest.raises(TypeError, match="float32 or float64"):
        radon(cuda.to_device(x.astype(np.int32)), [0.0])
    bad = x.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="image contains NaN or Inf"):
        radon(cuda.to_device(bad), [0.0])
    with pytest.raises(ValueError, match="sinogram contains NaN or Inf"):
        radon_adjoint(cuda.to_device(bad), np.arange(8.0))
    with pytest.raises(ValueError, match="must be 2-D"):
        radon(cuda.to_device(x[0]), [0.0])
    with pytest.raises(ValueError, match="device='cpu'"):
        radon(cuda.to_device(x), [0.0], device="cpu")
    with pytest.raises(ValueError, match="device must be"):
        radon(x, [0.0], device="gpu")


def _tiny_ct(dtype):
    from tvnumba.operators import radon

    n = 16
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    image = ((xx**2 + yy**2) < 30).astype(np.float64) + 0.5 * ((xx - 2)**2 + yy**2 < 6)
    theta = np.linspace(0.0, 180.0, 6, endpoint=False)
    return radon(image, theta).astype(dtype), theta


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reconstruct_with_cuda_projector_matches_cpu(dtype, monkeypatch):
    """The CPU solve of reconstruct_tv_beta with every projection done by the CUDA kernels
    (host arrays moved there and back) follows the all-CPU solve: the pairs agree to ~1e-16
    relative per application (the forward is the same arithmetic; the adjoint sums in
    another order), and 12 Chambolle-Pock steps (non-expansive) plus the 30 power
    iterations of ‖A‖ grow that by at most ~10² (measured: 2e-16 of the range in float64,
    0 in float32).  1e-12 (float64) and 1e-6 (float32: ~16 ulps) leave room for other
    summation orders."""
    from tvnumba.backends.cpu import CpuBackend
    from tvnumba.backends.cuda import CudaBackend
    from tvnumba.restoration import reconstruct_tv_beta

    sino, theta = _tiny_ct(dtype)
    kw = dict(weight=0.01, max_num_iter=12, eps=1e-12, return_info=True)
    u_cpu, info_cpu = reconstruct_tv_beta(sino, theta, **kw)
    gpu = CudaBackend(host_input=True, numba_input=False, kind="numpy")
    monkeypatch.setattr(CpuBackend, "radon",
                        lambda self, geom, a, adjoint=False: gpu.radon(geom, a, adjoint=adjoint))
    u_gpu, info_gpu = reconstruct_tv_beta(sino, theta, **kw)
    assert info_gpu.iterations == info_cpu.iterations == 12
    tol = 1e-12 if dtype == "float64" else 1e-6
    assert_allclose(u_gpu, u_cpu, rtol=0, atol=tol * np.ptp(u_cpu))
    assert_allclose(info_gpu.objective, info_cpu.objective, rtol=tol)


def test_reconstruct_device_array_rules(monkeypatch):
    """A device sinogram is a GPU solve: device='cpu' refuses it; without CuPy the error
    names the extra to install."""
    import sys

    from tvnumba.restoration import reconstruct_tv_beta

    sino, theta = _tiny_ct("float32")
    d = cuda.to_device(sino)
    with pytest.raises(ValueError, match="device='cpu'"):
        reconstruct_tv_beta(d, theta, device="cpu")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match=r"CuPy.*tvnumba\[cuda\]"):
        reconstruct_tv_beta(d, theta)
    with pytest.raises(RuntimeError, match=r"CuPy.*tvnumba\[cuda\]"):
        reconstruct_tv_beta(sino, theta, device="cuda")


@gpu_only
@pytest.mark.parametrize("method,beta", [("cp", 1.0), ("lbfgs", 1.5), ("mm", 0.7)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reconstruct_cupy_end_to_end(method, beta, dtype, rng):  # pragma: no cover - GPU
    """CuPy in, CuPy out: the GPU solve follows the CPU solve (same iterations, images
    within the rounding the iterations amplify), radon/radon_adjoint on CuPy too."""
    cupy = pytest.importorskip("cupy")
    from tvnumba.operators import radon, radon_adjoint
    from tvnumba.restoration import reconstruct_tv_beta

    sino, theta = _tiny_ct(dtype)
    c = cupy.asarray(sino)
    back = radon_adjoint(c, theta)
    assert isinstance(back, cupy.ndarray) and back.dtype == sino.dtype
    assert_allclose(cupy.asnumpy(back), radon_adjoint(sino, theta),
                    rtol=0, atol=RTOL[np.dtype(dtype)] * float(np.abs(back).max()))
    fwd = radon(back, theta)
    assert isinstance(fwd, cupy.ndarray)
    kw = dict(weight=0.01, beta=beta, method=method, max_num_iter=20, eps=1e-12,
              return_info=True)
    u_gpu, info_gpu = reconstruct_tv_beta(c, theta, **kw)
    assert isinstance(u_gpu, cupy.ndarray) and u_gpu.dtype == np.dtype(dtype)
    u_cpu, info_cpu = reconstruct_tv_beta(sino, theta, **kw)
    tol = 1e-8 if dtype == "float64" else 1e-4
    assert info_gpu.iterations == info_cpu.iterations
    assert_allclose(cupy.asnumpy(u_gpu), u_cpu, rtol=0, atol=tol * np.ptp(u_cpu))
    u_host = reconstruct_tv_beta(sino, theta, device="cuda", **kw)[0]
    assert isinstance(u_host, np.ndarray)
    u_nb = reconstruct_tv_beta(cuda.to_device(sino), theta, **kw)[0]
    assert hasattr(u_nb, "copy_to_host")


@gpu_only
@pytest.mark.parametrize("n", [256, 301])
def test_radon_large_dot_product(n, rng, monkeypatch):  # pragma: no cover - needs a GPU
    """Full-size launches (256 threads per block): the CUDA pair against the CPU pair and
    the dot-product test in float64."""
    from tvnumba.operators import radon, radon_adjoint

    monkeypatch.setattr(_config, "THREADS_PER_BLOCK", 256)
    theta = np.linspace(0.0, 180.0, 60, endpoint=False)
    for circle in (True, False):
        u = rng.standard_normal((n, n))
        au = radon(cuda.to_device(u), theta, circle).copy_to_host()
        assert _rel(au, radon(u, theta, circle)) <= 1e-12
        s = rng.standard_normal(au.shape)
        ats = radon_adjoint(cuda.to_device(s), theta, circle, shape=u.shape).copy_to_host()
        assert _rel(ats, radon_adjoint(s, theta, circle, shape=u.shape)) <= 1e-12
        lhs, rhs = np.vdot(au, s), np.vdot(u, ats)
        assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


@gpu_only
@pytest.mark.parametrize("beta,method", [(1.0, "cp"), (1.5, "lbfgs")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_deconvolve_and_inpaint_cupy_end_to_end(beta, method, dtype, rng):  # pragma: no cover
    """CuPy in, CuPy out for the other inverse problems: the GPU solve follows the CPU
    solve (same iterations; images within the rounding the iterations amplify)."""
    cupy = pytest.importorskip("cupy")
    from tvnumba import deconvolve_tv_beta, inpaint_tv_beta

    img = np.zeros((40, 36), dtype)
    img[8:30, 6:24] = 1
    img += (0.05 * rng.standard_normal(img.shape)).astype(dtype)
    y, x = np.mgrid[-3:4, -3:4]
    psf = np.exp(-(x * x + y * y) / 4.0)
    psf /= psf.sum()
    mask = rng.random(img.shape) < 0.3
    tol = 1e-8 if dtype == "float64" else 1e-4
    kw = dict(beta=beta, method=method, max_num_iter=15, eps=1e-12, return_info=True)
    for run in (lambda a, **k: deconvolve_tv_beta(a, psf, 0.01, **k),
                lambda a, **k: inpaint_tv_beta(a, mask, 0.01, **k)):
        u_gpu, info_gpu = run(cupy.asarray(img), **kw)
        assert isinstance(u_gpu, cupy.ndarray) and u_gpu.dtype == np.dtype(dtype)
        u_cpu, info_cpu = run(img, **kw)
        assert info_gpu.iterations == info_cpu.iterations
        assert_allclose(cupy.asnumpy(u_gpu), u_cpu, rtol=0, atol=tol * np.ptp(u_cpu))
        u_host = run(img, device="cuda", **kw)[0]
        assert isinstance(u_host, np.ndarray)


@gpu_only
@pytest.mark.parametrize("beta,method", [(1.0, "cp"), (1.5, "lbfgs"), (0.7, "mm")])
def test_solve_tv_beta_cupy_callables(beta, method, rng):  # pragma: no cover - GPU
    """A forward/adjoint pair of callables on CuPy arrays: the solve stays on the GPU
    and follows the same solve with NumPy callables."""
    cupy = pytest.importorskip("cupy")
    from tvnumba import solve_tv_beta

    x = np.zeros((24, 20))
    x[5:18, 4:15] = 1
    m = (rng.random(x.shape) < 0.6).astype(np.float64)  # a sampling operator
    f = m * (x + 0.05 * rng.standard_normal(x.shape))
    mc, fc = cupy.asarray(m), cupy.asarray(f)
    kw = dict(beta=beta, method=method, max_num_iter=15, eps=1e-12, return_info=True)
    u_gpu, info_gpu = solve_tv_beta(lambda u: mc * u, fc, 0.05, AT=lambda r: mc * r, **kw)
    assert isinstance(u_gpu, cupy.ndarray)
    u_cpu, info_cpu = solve_tv_beta(lambda u: m * u, f, 0.05, AT=lambda r: m * r, **kw)
    assert info_gpu.iterations == info_cpu.iterations
    assert_allclose(cupy.asnumpy(u_gpu), u_cpu, rtol=0, atol=1e-8 * np.ptp(u_cpu))
