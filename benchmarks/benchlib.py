"""What the benchmark suites share: the size switch, test data, the vectorised NumPy
formula of β-TV, timing (warm-up first, then pytest-benchmark rounds) and the
``extra_info`` conventions that ``render_results.py`` reads.

``extra_info`` keys written by :func:`record`:

* ``label``: the entry's name in the tables (tvnumba, numpy, skimage chambolle, ...);
* ``role``: ``"baseline"`` for the entries every other entry of the group is divided by
  (one ratio column per baseline), ``"tvnumba"`` for tvnumba's own entries, ``"other"``;
* ``table`` / ``row`` (optional): groups with the same ``table`` render as one wide
  table, one row per group (``row``), one time column per label;
* ``time_s`` (optional): the time to report instead of pytest-benchmark's median, when
  the call itself is measured elsewhere (CUDA events, a child process);
* ``lower_bound`` (optional): the time is a lower bound (a baseline stopped at its limit);
* any other key: a quality column (PSNR, relative objective excess, iterations, ...).
"""

from __future__ import annotations

import functools
import math
import os
import time

import numpy as np

SIZE_ENV = "TVNUMBA_BENCH_SIZE"
SIZES = ("small", "full")

# Seconds of timed rounds per entry, and the most rounds, at each size.
_BUDGET = {"small": 0.25, "full": 1.5}
_MAX_ROUNDS = {"small": 7, "full": 25}


def size() -> str:
    """``"small"`` (a few minutes on 2 cores) or ``"full"`` (the RESULTS.md figures)."""
    s = os.environ.get(SIZE_ENV, "small")
    if s not in SIZES:
        raise ValueError(f"{SIZE_ENV} must be one of {SIZES}, got {s!r}")
    return s


def pick(small, full):
    """``small`` or ``full`` according to :func:`size`."""
    return full if size() == "full" else small


def rounds_for(seconds: float) -> int:
    """Timed rounds for a call that took ``seconds`` warm: as many as fit the size's
    budget, at least 3 where three fit, at most the size's cap."""
    budget, cap = _BUDGET[size()], _MAX_ROUNDS[size()]
    if seconds >= budget:
        return 1
    return int(min(cap, max(3, budget // max(seconds, 1e-9))))


def measure(benchmark, fn, *, warm=None, rounds: int | None = None):
    """Time ``fn()`` with pytest-benchmark after one untimed warm-up call (compilation
    and caches excluded; a second one calibrates the rounds when the first was slow).
    ``warm``: another (smaller) call to warm up with instead; then ``rounds`` defaults
    to 1.  Returns ``fn()``'s result (of the last round)."""
    t0 = time.perf_counter()
    (warm or fn)()
    elapsed = time.perf_counter() - t0
    if rounds is None and warm is None and elapsed >= _BUDGET[size()]:
        t0 = time.perf_counter()  # the first call may have compiled: time a second one
        fn()
        elapsed = time.perf_counter() - t0
    if rounds is None:
        rounds = 1 if warm is not None else rounds_for(elapsed)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)


def _plain(v):
    """JSON-friendly scalars: NumPy scalars to Python, floats rounded to 4 significant
    digits (6 for objectives large enough to need them), NaN to None."""
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        v = float(v)
        if not math.isfinite(v):
            return None
        return float(f"{v:.6g}") if abs(v) >= 1000 else float(f"{v:.4g}")
    return v


def record(benchmark, label: str, *, role: str = "tvnumba", table: str | None = None,
           row: str | None = None, **info) -> None:
    """Write the entry's ``extra_info`` (see the module docstring)."""
    if role not in ("baseline", "tvnumba", "other"):
        raise ValueError(f"role must be baseline, tvnumba or other, got {role!r}")
    benchmark.extra_info["label"] = label
    benchmark.extra_info["role"] = role
    if table is not None:
        benchmark.extra_info["table"] = table
        benchmark.extra_info["row"] = row
    for k, v in info.items():
        benchmark.extra_info[k] = _plain(v)


def gbps(benchmark, nbytes: int):
    """Effective bandwidth of the entry: ``nbytes`` / median time (GB/s), or None when
    the benchmark did not run (``--benchmark-disable``)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None:
        return None
    return _plain(nbytes / stats.stats.median / 1e9)


# --------------------------------------------------------------------------- data
@functools.lru_cache(maxsize=None)
def _camera(n: int) -> np.ndarray:
    from skimage import data, img_as_float
    from skimage.transform import resize

    cam = img_as_float(data.camera())
    if n != cam.shape[0]:
        cam = resize(cam, (n, n), anti_aliasing=n < cam.shape[0], order=1)
    cam.setflags(write=False)
    return cam


def camera(n: int = 512) -> np.ndarray:
    """``skimage.data.camera()`` in [0, 1] (float64), resized to ``n``² (read-only)."""
    return _camera(int(n))


def noisy(clean: np.ndarray, sigma: float, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """``clean + sigma · N(0, 1)`` with ``default_rng(seed)``, in ``dtype``."""
    rng = np.random.default_rng(seed)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(dtype)


def blobs(n: int, sigma: float = 0.3, seed: int = 0):
    """A ``binary_blobs`` volume of side ``n`` (float64) and it plus Gaussian noise."""
    from skimage import data

    clean = data.binary_blobs(length=n, n_dim=3, rng=1).astype(np.float64)
    return clean, noisy(clean, sigma, seed)


def psnr(clean, u, data_range: float = 1.0) -> float:
    """PSNR (dB) of ``u`` against ``clean``."""
    err = np.mean((np.asarray(u, np.float64) - clean) ** 2)
    return float(10 * np.log10(data_range**2 / err))


def objective(u, f, weight: float, beta: float = 1.0, **tv_kw) -> float:
    """``½‖u − f‖² + weight · TV_β(u)`` in float64."""
    import tvnumba

    r = np.asarray(u, np.float64) - f
    return 0.5 * float(np.vdot(r, r)) + weight * float(tvnumba.tv(u, beta, **tv_kw))


def versions_of(*names: str) -> dict:
    """``{name: version}`` of the importable modules among ``names``."""
    import importlib

    out = {}
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - absent or broken: not reported
            continue
        out[name] = str(getattr(mod, "__version__", "?"))
    return out


# --------------------------------------------------------------------------- baseline
def numpy_tv(u, beta: float, isotropic: bool = True, want_grad: bool = True, xp=np):
    """β-TV value (and gradient) by whole-array operations of ``xp`` (NumPy or CuPy):
    unit spacing, no smoothing, input dtype kept, as one writes it by hand."""
    nd = u.ndim

    def sl(ax, s):
        idx = [slice(None)] * nd
        idx[ax] = s
        return tuple(idx)

    diffs = []
    for ax in range(nd):
        d = xp.zeros_like(u)
        d[sl(ax, slice(None, -1))] = u[sl(ax, slice(1, None))] - u[sl(ax, slice(None, -1))]
        diffs.append(d)

    def value_weight(m):
        pos = m > 0
        t = xp.where(pos, xp.where(pos, m, 1) ** (beta / 2 - 1), 0).astype(u.dtype)
        return m * t, beta * t

    if isotropic:
        m = sum(d * d for d in diffs)
        val, w = value_weight(m)
        value = float(val.sum(dtype=np.float64))
        fluxes = [w * d for d in diffs]
    else:
        value, fluxes = 0.0, []
        for d in diffs:
            val, w = value_weight(d * d)
            value += float(val.sum(dtype=np.float64))
            fluxes.append(w * d)
    if not want_grad:
        return value, None
    g = xp.zeros_like(u)
    for ax, fl in enumerate(fluxes):
        g -= fl
        g[sl(ax, slice(1, None))] += fl[sl(ax, slice(None, -1))]
    return value, g


def denoise_job(args):
    """``denoise_tv_beta(*args)`` for process pools (a module-level function pickles)."""
    import tvnumba

    f, weight, beta = args
    return tvnumba.denoise_tv_beta(f, weight, beta)
