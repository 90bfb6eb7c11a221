"""Observed-to-liability transformation (Lee et al. 2011 eq. 23), as GCTA's --prevalence.

Evidence: (1) GCTA's own printed output for three runs (V(G)/Vp, its SE, P and K ->
V(G)/Vp_L and its SE), (2) the formula recomputed here from scratch with the normal density
written out, (3) the REML summary/.hsq rows and the draw-by-draw posterior transformation.
"""

import math

import numpy as np
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.errors import InputError
from bayeslmm.estimation.liability import (
    case_proportion_of,
    liability_factor,
    liability_h2,
    liability_posterior,
    observed_to_liability,
)
from bayeslmm.reports.hsq import hsq_text

# GCTA 1.94 outputs published with their inputs (GWASTutorial, 1kg_eas example runs):
# (h2_o, se_o, P, K, h2_l, se_l)
GCTA_RUNS = [
    (0.724021, 0.654075, 0.497992, 0.5, 1.137308, 1.027434),
    (0.420715, 0.392317, 0.399602, 0.4, 0.676703, 0.631026),
    (0.394903, 0.914119, 0.497992, 0.5, 0.620322, 1.435918),
]


def lee_by_hand(h2_o, K, P):
    """Lee et al. (2011) eq. 23 with phi written out and the quantile by bisection."""
    lo, hi = -10.0, 10.0  # t with 1 - Phi(t) = K, Phi via erfc
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if 0.5 * math.erfc(mid / math.sqrt(2)) > K:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    z = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    return h2_o * (K * (1 - K)) ** 2 / (z * z * P * (1 - P))


@pytest.mark.parametrize("run", GCTA_RUNS)
def test_matches_gcta_printed_output(run):
    h2_o, se_o, P, K, h2_l, se_l = run
    # GCTA prints 6 decimals of the inputs: the result agrees to the rounding of its inputs.
    assert observed_to_liability(h2_o, K, P) == pytest.approx(h2_l, abs=2e-6)
    assert se_o * liability_factor(K, P) == pytest.approx(se_l, abs=2e-6)


@pytest.mark.parametrize("K, P", [(0.01, 0.5), (0.1, 0.5), (0.3, 0.3), (0.05, 0.2), (0.5, 0.5)])
def test_matches_formula_by_hand(K, P):
    assert observed_to_liability(0.3, K, P) == pytest.approx(lee_by_hand(0.3, K, P), rel=1e-10)


def test_no_ascertainment_factor():
    # P = K (a population sample): C = K (1 - K) / z^2, Dempster & Lerner's factor.
    K = 0.2
    t = 0.8416212335729143  # Phi^-1(0.8)
    z = math.exp(-t * t / 2) / math.sqrt(2 * math.pi)
    assert liability_factor(K, K) == pytest.approx(K * (1 - K) / z**2, rel=1e-9)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, "x"])
def test_bad_prevalence_is_an_error(bad):
    with pytest.raises(InputError, match="prevalence K"):
        liability_factor(bad, 0.5)
    with pytest.raises(InputError, match="case proportion P"):
        liability_factor(0.1, bad)


@pytest.fixture(scope="module")
def cc_fit():
    rng = np.random.default_rng(16)
    N, P_snps = 300, 500
    Z = rng.standard_normal((N, P_snps))
    K = Z @ Z.T / P_snps
    liab = Z @ rng.normal(0, np.sqrt(0.5 / P_snps), P_snps) + rng.normal(0, np.sqrt(0.5), N)
    y = (liab > np.quantile(liab, 0.7)).astype(float)  # 30% cases
    return bayeslmm.reml(y, K), y


def test_reml_summary_and_hsq_rows(cc_fit):
    fit, y = cc_fit
    K = 0.05
    P = y.mean()
    lia = fit.liability_h2(K)
    assert lia.case_proportion == pytest.approx(0.3)
    assert lia.h2 == pytest.approx(lee_by_hand(fit.h2, K, P), rel=1e-9)
    assert lia.h2_se == pytest.approx(lee_by_hand(fit.h2_se, K, P), rel=1e-9)
    table = fit.summary(prevalence=K)
    assert list(table.index[:5]) == ["V(G)", "V(e)", "Vp", "V(G)/Vp", "V(G)/Vp_L"]
    assert table.loc["V(G)/Vp_L", "Variance"] == pytest.approx(lia.h2)
    assert table.loc["V(G)/Vp_L", "SE"] == pytest.approx(lia.h2_se)
    text = hsq_text(fit, prevalence=K)
    lines = text.splitlines()
    i = lines.index("The estimate of variance explained on the observed scale is transformed "
                    "to that on the underlying scale:")
    assert lines[i - 1].startswith("V(G)/Vp\t")
    assert lines[i + 1] == ("(Proportion of cases in the sample = 0.300000; "
                            "User-specified disease prevalence = 0.050000)")
    assert lines[i + 2] == f"V(G)/Vp_L\t{lia.h2:.6f}\t{lia.h2_se:.6f}"
    # no prevalence: the table and the file are unchanged
    assert "V(G)/Vp_L" not in fit.summary().index
    assert "_L" not in hsq_text(fit)
    # an explicit P overrides the sample's
    assert liability_h2(fit, K, 0.5).h2 == pytest.approx(lee_by_hand(fit.h2, K, 0.5))
    lo, hi = lia.conf_int().loc["h2"]
    assert lo == pytest.approx(lia.h2 - 1.959964 * lia.h2_se, rel=1e-6)


def test_case_proportion_of_12_coding_and_quantitative():
    assert case_proportion_of([1, 2, 2, 2]) == pytest.approx(0.75)
    with pytest.raises(InputError, match="not a case-control trait"):
        case_proportion_of([0.2, 1.3, 0.0])


def test_posterior_transformed_draw_by_draw():
    rng = np.random.default_rng(3)
    h2 = rng.uniform(0, 0.5, (2, 50))
    post = xr.Dataset({"h2": (("chain", "draw"), h2)},
                      coords={"chain": [0, 1], "draw": np.arange(50)})
    idata = xr.DataTree.from_dict({"posterior": post})
    out = liability_posterior(idata, 0.1, 0.4)
    np.testing.assert_allclose(out["posterior"]["h2_liability"].values,
                               [[lee_by_hand(v, 0.1, 0.4) for v in row] for row in h2],
                               rtol=1e-10)
    assert "h2_liability" not in idata["posterior"]  # input untouched
    assert out["posterior"]["h2_liability"].attrs["prevalence"] == 0.1
    with pytest.raises(InputError, match="no posterior variable"):
        liability_posterior(idata, 0.1, 0.4, var_name="sigma_g2")
