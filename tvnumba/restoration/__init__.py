"""Restoration with a β-TV prior: denoising (and, built on the same solvers,
inverse problems)."""

from .denoise import DenoiseInfo, denoise_tv_beta
from .tomography import reconstruct_tv_beta

__all__ = ["denoise_tv_beta", "DenoiseInfo", "reconstruct_tv_beta"]
