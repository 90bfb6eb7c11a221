"""Association tests: each SNP against the phenotype under the mixed model.

``fixed_variance`` holds the tests with V fixed at the null fit (GCTA ``--mlma``, GRAMMAR-Gamma,
the score test); ``grammar`` their matrix-free versions from a Krylov fit.
"""

from bayeslmm.association.fixed_variance import assoc, genomic_control, one_test

__all__ = ["assoc", "genomic_control", "one_test"]
