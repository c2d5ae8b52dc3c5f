"""Memory: the peak memory of each call as a multiple of its input's bytes, against the
same job done by NumPy or scikit-image.

Each entry runs once more in a fresh Python process (after a warm-up call on a small input,
so that compilation is not counted): ``peak / input`` is the peak of tracemalloc (every
NumPy allocation, the output included) during the call divided by the input's bytes;
``RSS / input`` the peak resident memory during the call above the resident memory before
it (Linux: the peak reset through ``/proc/self/clear_refs``, read as ``VmHWM``; it also sees
what tracemalloc does not, such as Numba's scratch buffers and FFT plans) divided likewise;
for float32 (``f32``) and float64 (``f64``) inputs.  The time column is the float32 call,
timed in this process.

Inputs (small / full), uniform [0, 1) data (seed 0) unless said: ``tv`` (β = 1.7) on a 1-D
signal of 256² / 1024² values and ``tv_value_and_grad`` (β = 1.7, gradient allocated) on a
256² / 1024² image against ``benchlib.numpy_tv``; ``denoise_tv_beta`` with each solver forced
(cp β = 1, lbfgs β = 1.5, mm β = 0.5, dct β = 2; default eps) on a 256² / 1024² image against
``denoise_tv_chambolle``; on 128² / 512²: ``deconvolve_tv_beta`` (camera blurred by a
Gaussian 15×15 PSF, noise σ = 0.01, weight 1e-3) against ``wiener`` and ``inpaint_tv_beta``
(50 % random mask) against ``inpaint_biharmonic``; ``reconstruct_tv_beta`` (weight 0.05)
against one ``iradon_sart`` pass, on a sinogram of Shepp-Logan 64² / 256² at 60 angles (there
the image's bytes, not the smaller sinogram's, are the denominator).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from benchlib import measure, pick, record

pytestmark = pytest.mark.memory

# job -> (input maker, call) as Python source; ``n``, ``dtype``, ``np``, ``rng`` are defined.
IMAGE = "x = rng.random((n, n)).astype(dtype)"
SIGNAL = "x = rng.random(n * n).astype(dtype)"
MASKED = IMAGE + "; m = rng.random((n, n)) < 0.5"
JOBS = {
    "tv_1d": (SIGNAL, "tvnumba.tv(x, 1.7)"),
    "numpy_tv_1d": (SIGNAL, "numpy_tv(x, 1.7, want_grad=False)"),
    "tv_vg_2d": (IMAGE, "tvnumba.tv_value_and_grad(x, 1.7)"),
    "numpy_vg_2d": (IMAGE, "numpy_tv(x, 1.7)"),
    "cp": (IMAGE, "tvnumba.denoise_tv_beta(x, 0.1, 1.0, method='cp')"),
    "lbfgs": (IMAGE, "tvnumba.denoise_tv_beta(x, 0.25, 1.5, method='lbfgs')"),
    "mm": (IMAGE, "tvnumba.denoise_tv_beta(x, 0.04, 0.5, method='mm')"),
    "dct": (IMAGE, "tvnumba.denoise_tv_beta(x, 0.5, 2.0, method='dct')"),
    "chambolle": (IMAGE, "denoise_tv_chambolle(x, weight=0.1)"),
    "deconvolve": ("x = BLURRED(n).astype(dtype)", "tvnumba.deconvolve_tv_beta(x, PSF, 1e-3)"),
    "wiener": ("x = BLURRED(n).astype(dtype)", "wiener(x, PSF, 0.03)"),
    "inpaint": (MASKED, "tvnumba.inpaint_tv_beta(x, m)"),
    "biharmonic": (MASKED, "inpaint_biharmonic(x, m)"),
    "reconstruct": ("x = SINO(n).astype(dtype)", "tvnumba.reconstruct_tv_beta(x, THETA, 0.05)"),
    "sart": ("x = SINO(n).astype(dtype)", "iradon_sart(x, THETA)"),
}

PRELUDE = r"""
import numpy as np
import tvnumba
from benchlib import numpy_tv
from skimage.data import shepp_logan_phantom
from skimage.restoration import denoise_tv_chambolle, inpaint_biharmonic, wiener
from skimage.transform import iradon_sart, resize
from tvnumba.operators import radon
yy, xx = np.mgrid[-7:8, -7:8]
PSF = np.exp(-(xx * xx + yy * yy) / 8.0)
PSF /= PSF.sum()
THETA = np.linspace(0.0, 180.0, 60, endpoint=False)
def SINO(n):
    return radon(resize(shepp_logan_phantom(), (n, n)), THETA)
def BLURRED(n):
    from scipy.signal import fftconvolve
    from skimage import data
    cam = resize(data.camera() / 255.0, (n, n))
    noise = np.random.default_rng(0).standard_normal((n, n))
    return fftconvolve(cam, PSF, mode="same") + 0.01 * noise
"""

CHILD = r"""
import json, sys, tracemalloc, warnings
sys.path.insert(0, sys.argv[2])
warnings.simplefilter("ignore")
PRELUDE
def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
def reset_peak_rss():
    # Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status_kb("VmRSS") * 1024
    except (OSError, StopIteration):
        return None
spec = json.loads(sys.argv[1])
out = {}
for dtype in (np.float32, np.float64):
    for warm, n in ((True, spec["small"]), (False, spec["n"])):
        rng = np.random.default_rng(0)
        MAKE
        if warm:
            CALL  # warm-up: compile or load the kernels
            continue
        before = reset_peak_rss()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        CALL
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        rss = None if before is None else status_kb("VmHWM") * 1024 - before
        nbytes = NBYTES
        out[np.dtype(dtype).name] = (peak / nbytes, None if rss is None else rss / nbytes)
print(json.dumps(out))
"""


def peak_ratios(job: str, n: int, small: int) -> dict:
    """{dtype: (tracemalloc peak / input, peak RSS growth / input)} from a fresh process
    (for CT the image's bytes stand for the input's: the unknown, not the sinogram)."""
    make, call = JOBS[job]
    nbytes = "n * n * x.itemsize" if job in ("reconstruct", "sart") else "x.nbytes"
    src = (CHILD.replace("PRELUDE", PRELUDE).replace("MAKE", make).replace("CALL", call)
           .replace("NBYTES", nbytes))
    done = subprocess.run([sys.executable, "-c", src, json.dumps({"n": n, "small": small}),
                           os.path.dirname(os.path.abspath(__file__))],
                          capture_output=True, text=True, check=True, timeout=900)
    return json.loads(done.stdout.strip().splitlines()[-1])


GROUPS = {  # group -> [(job, label, role)], the size key
    "tv value, 1-D signal": ([("tv_1d", "tvnumba tv", "tvnumba"),
                              ("numpy_tv_1d", "NumPy formula", "baseline")], "big"),
    "tv_value_and_grad, image": ([("tv_vg_2d", "tvnumba tv_value_and_grad", "tvnumba"),
                                  ("numpy_vg_2d", "NumPy formula", "baseline")], "big"),
    "denoise_tv_beta by solver, image": ([("cp", "tvnumba cp (β=1)", "tvnumba"),
                                          ("lbfgs", "tvnumba lbfgs (β=1.5)", "tvnumba"),
                                          ("mm", "tvnumba mm (β=0.5)", "tvnumba"),
                                          ("dct", "tvnumba dct (β=2)", "tvnumba"),
                                          ("chambolle", "skimage denoise_tv_chambolle",
                                           "baseline")], "big"),
    "deconvolution, image": ([("deconvolve", "tvnumba deconvolve_tv_beta", "tvnumba"),
                              ("wiener", "skimage wiener", "baseline")], "mid"),
    "inpainting, image": ([("inpaint", "tvnumba inpaint_tv_beta", "tvnumba"),
                           ("biharmonic", "skimage inpaint_biharmonic", "baseline")], "mid"),
    "CT, sinogram of 60 angles": ([("reconstruct", "tvnumba reconstruct_tv_beta", "tvnumba"),
                                   ("sart", "skimage iradon_sart (one pass)", "baseline")],
                                  "ct"),
}
CASES = [(g, job, lab, role) for g, (entries, _) in GROUPS.items() for job, lab, role in entries]


def sizes(key):
    return {"big": pick(256, 1024), "mid": pick(128, 512), "ct": pick(64, 256)}[key]


@pytest.mark.parametrize("group,job,label,role", CASES, ids=[c[1] for c in CASES])
def test_memory(benchmark, group, job, label, role):
    n = sizes(GROUPS[group][1])
    what = f"{n * n} values" if job.endswith("1d") else f"{n}²"
    benchmark.group = f"memory: {group} {what}"
    ratios = peak_ratios(job, n, 32)
    ns: dict = {}
    exec(PRELUDE, ns)  # the same input and call, float32, timed here
    ns.update(n=n, dtype=np.float32, rng=np.random.default_rng(0))
    exec(JOBS[job][0], ns)
    call = compile(JOBS[job][1], job, "eval")
    measure(benchmark, lambda: eval(call, ns))
    f32, f64 = ratios["float32"], ratios["float64"]
    record(benchmark, label, role=role, **{"peak / input f32": f32[0],
                                           "peak / input f64": f64[0],
                                           "RSS / input f32": f32[1],
                                           "RSS / input f64": f64[1]})
