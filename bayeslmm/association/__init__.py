"""Association tests: each SNP against the phenotype under the mixed model.

``fixed_variance`` holds the tests with V fixed at the null fit (GCTA ``--mlma``, GRAMMAR-Gamma,
the score test); ``grammar`` their matrix-free versions from a Krylov fit.
"""

from bayeslmm.association import catalogue  # noqa: F401  (registers the tests; no numpy)


def __getattr__(name: str):
    # loaded on first use, so that the light catalogue of tests can be imported alone
    if name in __all__:
        from bayeslmm.association import fixed_variance

        return getattr(fixed_variance, name)
    raise AttributeError(f"module 'bayeslmm.association' has no attribute {name!r}")


__all__ = ["assoc", "genomic_control", "one_test"]
