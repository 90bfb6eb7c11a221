"""Log-likelihoods of the mixed model: one trait (``single``), several traits sharing a kernel
(``multitrait``), and the matrix-free Krylov/SLQ likelihood (``krylov``)."""

from bayeslmm.likelihood.single import DenseLMM, SpectralLMM, dense_loglik

__all__ = ["DenseLMM", "SpectralLMM", "dense_loglik"]
