"""The association tests the package offers, declared without numpy so that the command
line can list them (``--test`` choices) in a fraction of a second. The tests themselves are in
:mod:`bayeslmm.association.fixed_variance` (V fixed at the null fit),
:mod:`bayeslmm.association.per_snp` (GEMMA's re-fitted lambda) and
:mod:`bayeslmm.association.grammar` (matrix-free); the marginal OLS test ``linear`` (no GRM,
plink2 ``--glm``) is in :mod:`bayeslmm.association.marginal`."""

from __future__ import annotations

from bayeslmm.registry import ASSOC_TESTS, AssocTest, register_assoc_test

__all__ = ["ALIASES", "ASSOC_FLAGS", "MARGINAL_TESTS", "PER_SNP_TESTS", "TESTS"]

#: GEMMA's tests, lambda re-fitted (or, for the score test, at the null) for each SNP
PER_SNP_TESTS = ("wald", "lrt", "score")
TESTS = ("exact", "grammar", "grammar-gamma", *PER_SNP_TESTS)
#: tests without a GRM or a variance fit (plink2 --glm), not run by association.assoc
MARGINAL_TESTS = ("linear",)
#: other names of the tests (GCTA's --mlma is the exact test with V fixed at the null)
ALIASES = {"mlma": "exact"}
for _name, _what, _engines in (
        ("exact", "GLS Wald chi2 with V fixed at the null fit (notes eq. 55; GCTA --mlma, "
         "EMMAX)", ("eigen", "lowrank")),
        ("grammar", "GRAMMAR: BLUP residuals against the SNP, c_inf = 1 (notes 5.2.3)",
         ("eigen", "lowrank", "krylov")),
        ("grammar-gamma", "GRAMMAR-Gamma / BOLT-LMM-inf: GRAMMAR calibrated to the exact "
         "test on random SNPs (notes 5.2.3)", ("eigen", "lowrank", "krylov"))):
    register_assoc_test(AssocTest(_name, _what, columns=("beta", "se", "chi2", "p"),
                                  engines=_engines,
                                  options=frozenset({"loco", "format", "maf", "geno"})))
for _name, _what in (
        ("wald", "GEMMA -lmm 1: lambda re-fitted by REML for each SNP, Wald F(1, n - c - 1)"),
        ("lrt", "GEMMA -lmm 2: lambda re-fitted by ML for each SNP, likelihood ratio chi2_1"),
        ("score", "GEMMA -lmm 3: score test at the null ML lambda, F(1, n - c - 1)"),
        ("mlma", "GCTA --mlma: the exact test, V fixed at the null fit (alias of exact)")):
    register_assoc_test(AssocTest(_name, _what, engines=("eigen",),
                                  columns=("beta", "se", "p", "lambda", "logl_H1"),
                                  options=frozenset({"loco", "format", "maf", "geno"})))
register_assoc_test(AssocTest(
    "linear", "marginal OLS per SNP with covariates, t(N - M - 1); no GRM (plink2 --glm, "
    "plink1.9 --linear; the statistics LD score regression assumes)", engines=(),
    columns=("beta", "se", "t", "p", "obs_ct"), options=frozenset({"maf", "geno"})))

#: ``bayeslmm assoc``'s own flags (argparse keywords), added by the parser in one loop
ASSOC_FLAGS = {
    "--test": dict(choices=tuple(ASSOC_TESTS), default=None, nargs="+",
                   help="one or more tests, in one pass over the genotypes (several: one "
                   "file per test, PREFIX.<test>.<suffix>). wald, lrt, score: GEMMA's -lmm "
                   "1/2/3, variances re-fitted per SNP; mlma (= exact): GCTA --mlma, "
                   "variances fixed at the null fit; grammar, grammar-gamma: BOLT-LMM-inf; "
                   "linear: marginal OLS, no GRM (plink2 --glm -> PREFIX.glm.linear). "
                   "Default: wald; with --format mlma, mlma"),
    "--loco": dict(action="store_true", help="leave-one-chromosome-out: null fit per "
                   "chromosome (needs genotypes)"),
    "--format": dict(choices=("tsv", "mlma", "gemma"), default="tsv",
                     help="output layout: bayeslmm's PREFIX.assoc.tsv (default), GCTA's "
                     "PREFIX.mlma or GEMMA's PREFIX.assoc.txt (GEMMA's SNP filters -maf 0.01 "
                     "-miss 0.05 unless --maf/--geno are given; untested SNPs left out)"),
}
