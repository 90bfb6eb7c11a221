"""The reference distributions' tails from scipy.special equal scipy.stats' (which we did not
write) at the values the tests meet, deep tails included."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from bayeslmm.likelihood import tails

X = np.concatenate([np.linspace(0, 5, 11), [10.0, 50.0, 150.0, 700.0]])
P = np.array([0.5, 0.05, 1e-3, 1e-8, 1e-20, 1e-100, 1e-300])


@pytest.mark.parametrize("df", [1, 2, 7])
def test_chi2(df):
    np.testing.assert_allclose(tails.chi2_sf(X, df), stats.chi2.sf(X, df), rtol=1e-12)
    np.testing.assert_allclose(tails.chi2_isf(P, df), stats.chi2.isf(P, df), rtol=1e-10)
    q = np.array([0.5, 0.9, 0.95, 0.99])
    np.testing.assert_allclose(tails.chi2_ppf(q, df), stats.chi2.ppf(q, df), rtol=1e-12)


@pytest.mark.parametrize("d2", [3, 100, 1403])
def test_f(d2):
    np.testing.assert_allclose(tails.f_sf(X, 1, d2), stats.f.sf(X, 1, d2), rtol=1e-10)


def test_t_and_normal():
    t = np.concatenate([-X[::-1], X])
    np.testing.assert_allclose(tails.t_sf(t, 12), stats.t.sf(t, 12), rtol=1e-12)
    np.testing.assert_allclose(tails.t_ppf(0.975, 12), stats.t.ppf(0.975, 12), rtol=1e-12)
    np.testing.assert_allclose(tails.norm_sf(t), stats.norm.sf(t), rtol=1e-12)
    np.testing.assert_allclose(tails.norm_ppf(P), stats.norm.ppf(P), rtol=1e-12)
    np.testing.assert_allclose(tails.norm_isf(P), stats.norm.isf(P), rtol=1e-12)
    np.testing.assert_allclose(tails.norm_logpdf(t), stats.norm.logpdf(t), rtol=1e-12)


def test_assoc_path_does_not_import_scipy_stats():
    import subprocess
    import sys

    code = ("import sys, bayeslmm.association.fixed_variance, bayeslmm.estimation.reml; "
            "print('scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "False"
