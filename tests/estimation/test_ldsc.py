"""LD score regression (estimation/ldsc.py) against the published estimator written out again
here from Bulik-Sullivan et al. 2015 (weights 1 / (2 (b + N h2 l / M)^2 w_ld), two
re-weightings, the two-step estimator, a delete-one-block jackknife by refitting), so that
the fast algebraic delete values, the two-step combination and the bookkeeping are checked
against plain refits (evidence kind: closed form / brute force on simulated summary
statistics)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import h2_obs_to_liability, ldsc_h2


def _w(ld, wld, N, M, h2, b):
    h2 = min(max(h2, 0.0), 1.0)
    return 1.0 / (2 * (b + h2 * N * np.maximum(ld, 1) / M) ** 2) / np.maximum(wld, 1)


def _blocks(sep):
    return list(zip(sep[:-1], sep[1:], strict=True))


def _wls(X, y, w):
    sw = np.sqrt(w)
    return np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]


def _fit(X, y, weights_of, w0):
    """Two re-weightings, then the weights the final fit uses."""
    w = w0
    for _ in range(2):
        w = weights_of(_wls(X, y, w))
    return w


def _reference(chisq, ld, wld, N, M, nb, two_step=None, intercept=None):
    """The estimator refitted with each block deleted (slow, independent bookkeeping)."""
    n = len(chisq)
    Nbar = N.mean()
    x = N * ld / Nbar
    b0 = 1.0 if intercept is None else intercept
    w0 = _w(ld, wld, N, M, M * (chisq.mean() - b0) / np.mean(N * ld), b0)
    if intercept is not None:
        X, y = x[:, None], chisq - intercept
        w = _fit(X, y, lambda c: _w(ld, wld, N, M, M * c[0] / Nbar, intercept), w0)
        sep = np.floor(np.linspace(0, n, nb + 1)).astype(int)
        est = _wls(X, y, w)[0]
        dels = np.array([_wls(np.delete(X, np.s_[a:b], 0), np.delete(y, np.s_[a:b]),
                              np.delete(w, np.s_[a:b]))[0] for a, b in _blocks(sep)])
        pseudo = nb * est - (nb - 1) * dels
        return M * est / Nbar, M * np.sqrt(np.var(pseudo, ddof=1) / nb) / Nbar, intercept, None
    X = np.column_stack([x, np.ones(n)])
    ii = chisq < two_step if two_step is not None else np.ones(n, bool)
    n1 = ii.sum()
    # ldsc's step 1 (two-step) hands its weights N l / Nbar; the one-step fit l itself
    lw = x[ii] if two_step is not None else ld
    w1 = _fit(X[ii], chisq[ii], lambda c: _w(lw, wld[ii], N[ii], M, M * c[0] / Nbar, c[1]),
              w0[ii])
    sep1 = np.floor(np.linspace(0, n1, nb + 1)).astype(int)
    full1 = _wls(X[ii], chisq[ii], w1)
    del1 = np.array([_wls(np.delete(X[ii], np.s_[a:b], 0), np.delete(chisq[ii], np.s_[a:b]),
                          np.delete(w1, np.s_[a:b])) for a, b in _blocks(sep1)])
    if two_step is None:
        pseudo = nb * full1 - (nb - 1) * del1
        se = np.sqrt(np.var(pseudo, axis=0, ddof=1) / nb)
        return M * full1[0] / Nbar, M * se[0] / Nbar, full1[1], se[1]
    b1 = full1[1]
    y2 = chisq - b1
    w2 = _fit(x[:, None], y2, lambda c: _w(ld, wld, N, M, M * c[0] / Nbar, b1), w0)
    idx1 = np.flatnonzero(ii)
    sep2 = np.r_[0, idx1[sep1[1:-1]], n]
    s2 = _wls(x[:, None], y2, w2)[0]
    del2 = np.array([_wls(np.delete(x, np.s_[a:b])[:, None], np.delete(y2, np.s_[a:b]),
                          np.delete(w2, np.s_[a:b]))[0] for a, b in _blocks(sep2)])
    c = np.sum(w0 * x) / np.sum(w0 * x**2)
    dslope = del2 - c * (del1[:, 1] - b1)
    est = np.array([s2, b1])
    dels = np.column_stack([dslope, del1[:, 1]])
    pseudo = nb * est - (nb - 1) * dels
    se = np.sqrt(np.var(pseudo, axis=0, ddof=1) / nb)
    return M * s2 / Nbar, M * se[0] / Nbar, b1, se[1]


@pytest.fixture(scope="module")
def sumstats():
    rng = np.random.default_rng(2015)
    n, M, h2 = 4000, 1e6, 0.4  # mean chi2 about 2.6, as in a large GWAS
    ld = rng.gamma(2.0, 40.0, n) + 1
    wld = ld * rng.uniform(0.6, 1.0, n)
    N = rng.integers(40_000, 60_000, n).astype(float)
    chisq = (1.05 + N * h2 * ld / M) * rng.chisquare(1, n)
    return chisq, ld, wld, N, M


@pytest.mark.parametrize("kw", [dict(two_step=30.0), dict(two_step=None),
                                dict(two_step=None, intercept=1.0)])
def test_matches_published_estimator(sumstats, kw):
    chisq, ld, wld, N, M = sumstats
    h2, h2_se, b, b_se = _reference(chisq, ld, wld, N, M, 200, **kw)
    fit = ldsc_h2(chisq, ld, wld, N, M, n_blocks=200, **kw)
    np.testing.assert_allclose([fit.h2, fit.h2_se, fit.intercept], [h2, h2_se, b], rtol=1e-8)
    if b_se is not None:
        np.testing.assert_allclose(fit.intercept_se, b_se, rtol=1e-8)
        np.testing.assert_allclose(fit.ratio, (b - 1) / (chisq.mean() - 1), rtol=1e-10)
    else:
        assert np.isnan(fit.intercept_se) and np.isnan(fit.ratio)
    assert fit.mean_chisq == pytest.approx(chisq.mean())
    assert fit.lambda_gc == pytest.approx(np.median(chisq) / 0.4549)
    assert 0.3 < fit.h2 < 0.5  # and the simulated h2 is recovered
    if kw.get("two_step"):
        assert fit.twostep_filtered == int((chisq >= 30).sum()) > 0


def test_chisq_max_and_refusals(sumstats):
    chisq, ld, wld, N, M = sumstats
    keep = chisq < 50
    a = ldsc_h2(chisq, ld, wld, N, M, chisq_max=50)
    b = ldsc_h2(chisq[keep], ld[keep], wld[keep], N[keep], M)
    assert a.h2 == b.h2 and a.n_snps == keep.sum() < len(chisq)
    with pytest.raises(InputError, match="--two-step"):
        ldsc_h2(chisq, ld, wld, N, M, intercept=1.0)
    with pytest.raises(InputError, match="missing"):
        ldsc_h2(np.r_[np.nan, chisq[1:]], ld, wld, N, M)


def test_liability_scale():
    """Lee et al. 2011: with P = K the factor is K (1 - K) / phi(t)^2."""
    K = 0.1
    t = stats.norm.isf(K)
    want = 0.2 * K * (1 - K) / stats.norm.pdf(t) ** 2
    assert h2_obs_to_liability(0.2, K, K) == pytest.approx(want, rel=1e-12)
    with pytest.raises(InputError, match="--pop-prev"):
        h2_obs_to_liability(0.2, 0.5, 1.0)
