"""Restoration with a β-TV prior: denoising (and, built on the same solvers,
inverse problems)."""

from .denoise import denoise_tv_beta
from .inverse import deconvolve_tv_beta, inpaint_tv_beta, solve_tv_beta
from .tomography import reconstruct_tv_beta

__all__ = ["denoise_tv_beta", "solve_tv_beta", "deconvolve_tv_beta",
           "inpaint_tv_beta", "reconstruct_tv_beta"]
