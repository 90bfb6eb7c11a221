"""GRAMMAR / GRAMMAR-Gamma from the Krylov fit vs bayeslmm.assoc on the exact fit
(evidence: brute force, on the demo fileset)."""

from __future__ import annotations

import numpy as np
import pytest

import bayeslmm
from bayeslmm.association.fixed_variance import one_test
from bayeslmm.association.grammar import assoc_krylov
from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.estimation.engines import reml_genotypes
from bayeslmm.estimation.krylov import fit_krylov, krylov_model
from bayeslmm.genotypes.kinship import variant_qc
from bayeslmm.genotypes.operator import GenotypeOperator
from bayeslmm.io import read_plink


@pytest.fixture(scope="module")
def demo_fits():
    demo = load_demo()
    y, K = demo.phenotype_and_grm()
    ds = read_plink(demo.bfile)
    # SNPs called in every sample: there the operator's Z Z'/P is the GCTA GRM exactly.
    ds = ds.isel(variant=np.flatnonzero(variant_qc(ds, geno=0.0)["keep"].to_numpy()))
    ref = reml_genotypes(ds, y, engine="eigen", progress=False)
    pos = {s: i for i, s in enumerate(ds["sample"].to_numpy().astype(str))}
    rows = np.array([pos[s] for s in ref.data.samples])
    op = GenotypeOperator(ds, samples=rows, X=ref.data.X, progress=False)
    # 13 steps x 31 vectors exhaust the 394-dimensional residual space: no MC error left.
    assert not op.has_missing
    model = krylov_model(op, ref.data.y, ref.data.X, n_steps=13, n_deflate=1000)
    return ds, ref, fit_krylov(model), op


def test_grammar_equals_assoc_on_the_exact_fit(demo_fits):
    ds, ref, fit, op = demo_fits
    assert abs(fit.h2 - ref.h2) < 1e-6
    res = assoc_krylov(fit, op, n_calibration=30, seed=1)
    exp = bayeslmm.assoc(ref, ds, test=["exact", "grammar", "grammar-gamma"])
    g = one_test(exp, "grammar")["chi2"].to_numpy()
    np.testing.assert_allclose(res["chi2_grammar"], g, rtol=1e-5, atol=1e-8)
    # c_inf = mean over the calibration SNPs of GRAMMAR chi2 / exact chi2: the same SNPs
    # through the exact test give the same number.
    cal = res.attrs["calibration_variants"]
    assert cal.size == 30
    c_exact = float(np.mean(g[cal] / one_test(exp, "exact")["chi2"].to_numpy()[cal]))
    assert abs(res.attrs["c_inf"] - c_exact) < 1e-5
    # Against assoc's own GRAMMAR-Gamma (other random SNPs): same ranking, top hit.
    a, b = res["chi2"].to_numpy(), one_test(exp, "grammar-gamma")["chi2"].to_numpy()
    assert np.corrcoef(a, b)[0, 1] > 0.999 and np.argmax(a) == np.argmax(b)


def test_grammar_only_is_one_pass(demo_fits):
    _, _, fit, op = demo_fits
    before = op.stats.passes
    res = assoc_krylov(fit, op, n_calibration=0)
    assert op.stats.passes == before + 1 and res.attrs["c_inf"] == 1.0
    np.testing.assert_array_equal(res["chi2"], res["chi2_grammar"])


def test_needs_the_fit_operator(demo_fits):
    ds, _, fit, _ = demo_fits
    with pytest.raises(InputError, match="covariates projected"):
        assoc_krylov(fit, GenotypeOperator(ds, progress=False))


def test_grammar_layout_equals_assoc_per_allele(demo_fits):
    """The Krylov result carries assoc's columns: beta and se per A1 allele, af and n over
    the analysed samples, equal to bayeslmm.assoc's GRAMMAR on the exact fit; so the same
    writers (.assoc.tsv, GCTA .mlma, GEMMA .assoc.txt) take it."""
    from bayeslmm.reports.writers import ASSOC_FORMATS

    ds, ref, fit, op = demo_fits
    res = assoc_krylov(fit, op, test="grammar")
    exp = one_test(bayeslmm.assoc(ref, ds, test="grammar"), "grammar")
    # The Krylov fit's y~ (float32 products, h2 to 1e-6) is exact to ~1e-7 relative: the
    # statistics agree to that, relative to their largest value (a beta near 0 is a
    # difference of near-equal numbers).
    for name in ("beta", "se", "chi2", "p", "af"):
        scale = float(np.nanmax(np.abs(exp[name])))
        np.testing.assert_allclose(res[name], exp[name], rtol=1e-5, atol=1e-6 * scale,
                                   err_msg=name)
    for name in ("n", "monomorphic", "snp", "a1", "pos"):
        np.testing.assert_array_equal(res[name], exp[name], err_msg=name)
    assert res.attrs["test"] == "grammar"
    for fmt, (table, _) in ASSOC_FORMATS.items():
        if fmt == "glm":  # the marginal test's layout: refused for a mixed-model test
            with pytest.raises(InputError, match="layout is the linear test's"):
                table(res)
            continue
        assert len(table(res)) == res.sizes["variant"], fmt
    with pytest.raises(InputError, match="exact test needs a decomposition"):
        assoc_krylov(fit, op, test="exact")
