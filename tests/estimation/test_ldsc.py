"""LD score regression (estimation/ldsc.py) against the published estimator written out again
here from Bulik-Sullivan et al. 2015 (weights 1 / (2 (b + N h2 l / M)^2 w_ld), two
re-weightings, the two-step estimator, a delete-one-block jackknife by refitting), so that
the fast algebraic delete values, the two-step combination and the bookkeeping are checked
against plain refits (evidence kind: closed form / brute force on simulated summary
statistics)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayeslmm.errors import InputError
from bayeslmm.estimation.ldsc import h2_obs_to_liability, ldsc_h2, ldsc_rg
from bayeslmm.estimation.ldsc_files import ldsc_rg_files


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


# ----------------------------------------------------------------------------- rg
def _refit(y, ld, Nx, M, nb, wfun, null, step1=None, intercept=None):
    """One LD score regression (h2 or gencov) with every delete-one-block value refitted:
    (total, SE, intercept, intercept SE, delete totals). ``wfun(l, idx, total, b)``: the
    weights of the SNPs idx (None: all) with LD column l."""
    n = len(y)
    Nbar = Nx.mean()
    x = Nx * ld / Nbar
    b0 = null if intercept is None else intercept
    w0 = wfun(ld, None, M * (y.mean() - b0) / np.mean(Nx * ld), b0)
    sep = np.floor(np.linspace(0, n, nb + 1)).astype(int)

    def dels(X, yy, w, s):
        return np.array([_wls(np.delete(X, np.s_[a:b], 0), np.delete(yy, np.s_[a:b]),
                              np.delete(w, np.s_[a:b])) for a, b in _blocks(s)])

    def se(est, d):
        return np.sqrt(np.var(nb * est - (nb - 1) * d, axis=0, ddof=1) / nb)

    if intercept is not None:
        X, yy = x[:, None], y - intercept
        w = _fit(X, yy, lambda c: wfun(ld, None, M * c[0] / Nbar, intercept), w0)
        est, d = _wls(X, yy, w), dels(X, yy, w, sep)
        return M * est[0] / Nbar, M * se(est, d)[0] / Nbar, intercept, np.nan, M * d[:, 0] / Nbar
    X = np.column_stack([x, np.ones(n)])
    if step1 is None:
        w = _fit(X, y, lambda c: wfun(ld, None, M * c[0] / Nbar, c[1]), w0)
        est, d = _wls(X, y, w), dels(X, y, w, sep)
        s = se(est, d)
        return M * est[0] / Nbar, M * s[0] / Nbar, est[1], s[1], M * d[:, 0] / Nbar
    idx = np.flatnonzero(step1)
    w1 = _fit(X[idx], y[idx], lambda c: wfun(x[idx], idx, M * c[0] / Nbar, c[1]), w0[idx])
    sep1 = np.floor(np.linspace(0, idx.size, nb + 1)).astype(int)
    e1, d1 = _wls(X[idx], y[idx], w1), dels(X[idx], y[idx], w1, sep1)
    b1 = e1[1]
    w2 = _fit(x[:, None], y - b1, lambda c: wfun(ld, None, M * c[0] / Nbar, b1), w0)
    sep2 = np.r_[0, idx[sep1[1:-1]], n]
    e2, d2 = _wls(x[:, None], y - b1, w2), dels(x[:, None], y - b1, w2, sep2)
    c = np.sum(w0 * x) / np.sum(w0 * x**2)
    est, d = np.r_[e2[0], b1], np.column_stack([d2[:, 0] - c * (d1[:, 1] - b1), d1[:, 1]])
    s = se(est, d)
    return M * est[0] / Nbar, M * s[0] / Nbar, b1, s[1], M * d[:, 0] / Nbar


def _gencov_w(ld, wld, N1, N2, M, h1, h2, rho, b, b1, b2):
    h1, h2 = (min(max(h, 0.0), 1.0) for h in (h1, h2))
    rho, l = min(max(rho, -1.0), 1.0), np.maximum(ld, 1)
    return 1 / ((b1 + N1 * h1 * l / M) * (b2 + N2 * h2 * l / M)
                + (b + np.sqrt(N1 * N2) * rho * l / M) ** 2) / np.maximum(wld, 1)


@pytest.fixture(scope="module")
def two_sumstats():
    """Two traits' Z for the same SNPs: h2 0.4 and 0.3, gencov 0.2 (rg 0.58), 15,000
    shared samples with phenotypic correlation 0.3, unequal N; z1 z2 with the model's
    moments."""
    from helpers import ldsc_two_traits

    return ldsc_two_traits(4000, 1236)


@pytest.mark.parametrize("kw", [dict(), dict(two_step=30.0),
                                dict(intercept_h2=1.0, intercept_gencov=0.1)])
def test_rg_matches_refitted_estimator(two_sumstats, kw):
    """gencov, its intercept and their SEs, and rg with its ratio-jackknife SE (pseudovalues
    n_b rg - (n_b - 1) gencov_(-b) / sqrt(h2_1(-b) h2_2(-b))), against every block's
    regression refitted, to 1e-8."""
    z1, z2, ld, wld, N1, N2, M = two_sumstats
    nb, ts, ih, ig = 100, kw.get("two_step"), kw.get("intercept_h2"), kw.get("intercept_gencov")
    hs = [_refit(z**2, ld, N, M, nb, lambda l, i, t, b, N=N: _w(
        l, wld if i is None else wld[i], N if i is None else N[i], M, t, b), 1.0,
        None if ts is None else z**2 < ts, ih) for z, N in ((z1, N1), (z2, N2))]

    def wg(l, i, t, b):
        s = slice(None) if i is None else i
        return _gencov_w(l, wld[s], N1[s], N2[s], M, hs[0][0], hs[1][0], t, b, hs[0][2],
                         hs[1][2])

    g, g_se, b, b_se, g_del = _refit(z1 * z2, ld, np.sqrt(N1 * N2), M, nb, wg, 0.0,
                                     None if ts is None else (z1**2 < ts) & (z2**2 < ts), ig)
    rg = g / np.sqrt(hs[0][0] * hs[1][0])
    pseudo = nb * rg - (nb - 1) * g_del / np.sqrt(hs[0][4] * hs[1][4])
    rg_se = np.sqrt(np.var(pseudo, ddof=1) / nb)
    fit = ldsc_rg(z1, z2, ld, wld, N1, N2, M, n_blocks=nb, **kw)
    np.testing.assert_allclose([fit.rg, fit.rg_se, fit.gencov, fit.gencov_se, fit.intercept],
                               [rg, rg_se, g, g_se, b], rtol=1e-8)
    np.testing.assert_allclose([fit.hsq1.h2, fit.hsq2.h2, fit.hsq2.h2_se],
                               [hs[0][0], hs[1][0], hs[1][1]], rtol=1e-8)
    if ig is None:
        np.testing.assert_allclose(fit.intercept_se, b_se, rtol=1e-8)
    else:
        assert np.isnan(fit.intercept_se) and np.isnan(fit.bse["intercept"])
    assert 0.4 < fit.rg < 0.8 and abs(fit.gencov - 0.2) < 3 * fit.gencov_se  # the truth
    # the results vocabulary: rg's z and p, intervals
    assert fit.z == pytest.approx(fit.rg / fit.rg_se)
    assert fit.p == pytest.approx(2 * stats.norm.sf(abs(fit.z)), rel=1e-10)
    lo, hi = fit.conf_int().loc["rg"]
    assert lo == pytest.approx(fit.rg - 1.959964 * fit.rg_se, rel=1e-6) and hi > fit.rg
    assert fit.nobs == len(z1) and list(fit.params.index[:3]) == ["rg", "gencov", "intercept"]


def test_rg_invariances(two_sumstats):
    """Exact properties of the estimator: -z2 negates rg, gencov and its intercept and keeps
    every SE (the weights see gencov and its intercept squared); the traits swapped give the
    same rg (the regression is symmetric in them); a trait with itself has rg 1 and gencov
    its h2, the intercept h2's (to 1e-3, and 1% of h2's SE: not exactly, since the
    re-weighting starts from b = 0 for gencov and from 1 for h2, and gencov's weights take
    h2's final values where h2's own take its iterates; 2 re-weightings do not converge)."""
    z1, z2, ld, wld, N1, N2, M = two_sumstats
    for kw in (dict(), dict(two_step=30.0)):
        f = ldsc_rg(z1, z2, ld, wld, N1, N2, M, **kw)
        neg = ldsc_rg(z1, -z2, ld, wld, N1, N2, M, **kw)
        np.testing.assert_allclose([neg.rg, neg.gencov, neg.intercept, neg.mean_z1z2],
                                   [-f.rg, -f.gencov, -f.intercept, -f.mean_z1z2], rtol=1e-10)
        np.testing.assert_allclose([neg.rg_se, neg.gencov_se, neg.intercept_se, neg.p],
                                   [f.rg_se, f.gencov_se, f.intercept_se, f.p], rtol=1e-10)
        sw = ldsc_rg(z2, z1, ld, wld, N2, N1, M, **kw)
        np.testing.assert_allclose([sw.rg, sw.rg_se, sw.gencov, sw.hsq1.h2, sw.hsq2.h2],
                                   [f.rg, f.rg_se, f.gencov, f.hsq2.h2, f.hsq1.h2], rtol=1e-10)
    for z, N in ((z1, N1), (z2, N2)):
        same = ldsc_rg(z, z, ld, wld, N, N, M)
        h2 = ldsc_h2(z**2, ld, wld, N, M, two_step=None)
        assert same.hsq1.h2 == h2.h2 and same.hsq1.h2_se == h2.h2_se
        assert abs(same.rg - 1) < 1e-3 and same.rg_se < 1e-3
        assert abs(same.gencov - h2.h2) < 0.01 * h2.h2_se
        assert abs(same.intercept - h2.intercept) < 0.01 * h2.intercept_se


def test_rg_refusals_and_bounds(two_sumstats, caplog):
    z1, z2, ld, wld, N1, N2, M = two_sumstats
    with pytest.raises(InputError, match="--two-step"):
        ldsc_rg(z1, z2, ld, wld, N1, N2, M, intercept_gencov=0.0, two_step=30.0)
    with pytest.raises(InputError, match="--two-step"):
        ldsc_rg(z1, z2, ld, wld, N1, N2, M, intercept_h2=1.0, two_step=30.0)
    with pytest.raises(InputError, match="one per trait"):
        ldsc_rg(z1, z2, ld, wld, N1, N2, M, intercept_h2=(1.0, 1.0, 1.0))
    with pytest.raises(InputError, match="z2 has missing"):
        ldsc_rg(z1, np.r_[np.nan, z2[1:]], ld, wld, N1, N2, M)
    # --chisq-max: ldsc's rule for rg, z1^2 z2^2 < C^2
    keep = z1**2 * z2**2 < 8.0**2
    a = ldsc_rg(z1, z2, ld, wld, N1, N2, M, chisq_max=8.0)
    b = ldsc_rg(z1[keep], z2[keep], ld[keep], wld[keep], N1[keep], N2[keep], M)
    assert a.rg == b.rg and a.n_snps == keep.sum() < len(z1)
    # an h2 <= 0 (a trait of noise with intercept above the mean): no rg, as ldsc
    noise = np.random.default_rng(3).standard_normal(len(z1)) * 0.9
    f = ldsc_rg(z1, noise, ld, wld, N1, N2, M, intercept_h2=(1.0, 1.0))
    assert f.hsq2.h2 <= 0 and np.isnan(f.rg) and np.isnan(f.p)
    assert "h2 of trait 2 is <= 0" in caplog.text


def _files(tmp_path, snp, z, a1, a2, name):
    pd.DataFrame({"SNP": snp, "A1": a1, "A2": a2, "Z": z, "N": 50_000}).to_csv(
        tmp_path / name, sep="\t", index=False)
    return tmp_path / name


def test_rg_files_align_alleles(two_sumstats, tmp_path):
    """Through the files: trait 2 written with A1/A2 swapped and Z negated, or on the other
    strand, gives trait 1's alignment exactly; SNPs with mismatched or strand-ambiguous
    alleles are dropped; no SNP in common is refused in one line."""
    z1, z2, ld, wld, *_ = two_sumstats
    n = len(z1)
    snp = np.array([f"rs{i}" for i in range(n)])
    pairs = np.array([("A", "G"), ("A", "C"), ("C", "T"), ("G", "T")])[np.arange(n) % 4]
    comp = {"A": "T", "C": "G", "G": "C", "T": "A"}
    c1, c2 = (np.array([comp[a] for a in pairs[:, k]]) for k in (0, 1))
    gz = "SNP\tL2\n" + "".join(f"{s}\t{v}\n" for s, v in zip(snp, ld, strict=True))
    (tmp_path / "ld.l2.ldscore").write_text(gz)
    (tmp_path / "ld.l2.M_5_50").write_text("1000000\n")
    a = _files(tmp_path, snp, z1, pairs[:, 0], pairs[:, 1], "a.sumstats")
    ref = ldsc_rg_files(a, _files(tmp_path, snp, z2, pairs[:, 0], pairs[:, 1], "b.sumstats"),
                        tmp_path / "ld", tmp_path / "ld")
    odd = np.arange(n) % 2 == 1
    swapped = _files(tmp_path, snp, np.where(odd, -z2, z2), np.where(odd, pairs[:, 1],
                     pairs[:, 0]), np.where(odd, pairs[:, 0], pairs[:, 1]), "sw.sumstats")
    strand = _files(tmp_path, snp, z2, c1, c2, "st.sumstats")
    for other in (swapped, strand):
        f = ldsc_rg_files(a, other, tmp_path / "ld", tmp_path / "ld")
        assert (f.rg, f.rg_se, f.n_snps) == (ref.rg, ref.rg_se, n)
    flipped = ldsc_rg_files(a, _files(tmp_path, snp, -z2, pairs[:, 0], pairs[:, 1],
                                      "neg.sumstats"), tmp_path / "ld", tmp_path / "ld")
    assert flipped.rg == pytest.approx(-ref.rg, rel=1e-10)
    bad = np.where(np.arange(n) % 10 == 0, c2, pairs[:, 1])  # mismatched pairs
    bad = np.where(np.arange(n) % 10 == 1, c1, bad)          # A/T, C/G: strand-ambiguous
    f = ldsc_rg_files(a, _files(tmp_path, snp, z2, pairs[:, 0], bad, "bad.sumstats"),
                      tmp_path / "ld", tmp_path / "ld")
    assert f.n_snps == n - 2 * (n // 10)
    with pytest.raises(InputError, match="no SNP is in both"):
        ldsc_rg_files(a, _files(tmp_path, np.char.add("x", snp), z2, pairs[:, 0],
                                pairs[:, 1], "x.sumstats"), tmp_path / "ld", tmp_path / "ld")
