"""Estimation of the variance components and fixed effects: OLS, REML/ML (one kernel, several
kernels, several traits, Krylov), the engines that choose between them, liability-scale h2,
LDAK's alpha profile. Every fit is a :class:`~bayeslmm.estimation.results.Results`."""
