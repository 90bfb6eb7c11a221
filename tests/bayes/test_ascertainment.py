"""The warning for ascertained case-control samples of relatives (both directions).

Kernels with a known structure: sibling pairs (K_ij = 0.5 within a pair, 0 across) against
unrelated samples (K = I), so that which samples have a close relative is known exactly.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bayeslmm.bayes.ascertainment import (
    RELATIVE_K,
    ascertainment_check,
    close_relatives,
)
from bayeslmm.bayes.models.threshold import threshold
from bayeslmm.covariance.decomposition import decompose

N = 120


def _sibs(n_pairs_related=N // 2):
    """N samples, the first 2 n_pairs_related in sibling pairs (K_ij = 0.5)."""
    K = np.eye(N)
    for k in range(n_pairs_related):
        i, j = 2 * k, 2 * k + 1
        K[i, j] = K[j, i] = 0.5
    return K


def _trait(n_cases):
    y = np.zeros(N)
    y[np.random.default_rng(1).choice(N, n_cases, replace=False)] = 1.0
    return y


def test_close_relatives_dense_and_from_decomposition():
    K = _sibs(10)  # 20 samples with a sibling, 100 without
    K[50, 60] = K[60, 50] = RELATIVE_K - 1e-6  # just below the cutoff: not relatives
    expected = np.zeros(N, dtype=bool)
    expected[:20] = True
    np.testing.assert_array_equal(close_relatives(K), expected)
    np.testing.assert_array_equal(close_relatives(decompose(K)), expected)


def test_verdicts_both_directions():
    related, unrelated = _sibs(), np.eye(N)
    cc = _trait(60)  # P = 0.5
    # ascertained (P = 0.5 >> K = 0.05) among sibling pairs: flagged
    v = ascertainment_check(cc, related, 0.05)
    assert v.ascertained and v.related and v.uncalibrated
    assert v.n_with_relative == N and "not calibrated" in v.message()
    # the same ascertainment among unrelated samples: not flagged
    v = ascertainment_check(cc, unrelated, 0.05)
    assert v.ascertained and not v.related and not v.uncalibrated
    # a population sample of relatives (P = K): not flagged, the kernel is not even read
    v = ascertainment_check(cc, related, 0.5)
    assert not v.ascertained and not v.uncalibrated and v.n_with_relative == 0
    # P = 2 K in a small sample is within chance (1.5 binomial SEs): not flagged
    v = ascertainment_check(_trait(12), related, 0.05)  # P = 0.1
    assert v.case_proportion == pytest.approx(0.1)
    assert not v.ascertained


def test_threshold_logs_the_warning_only_for_that_design(caplog):
    related, cc = _sibs(), _trait(60)
    name = "bayeslmm.bayes.models.threshold"
    with caplog.at_level(logging.WARNING, logger=name):
        threshold(cc, related, prevalence=0.05)
    assert any("not calibrated" in r.getMessage() for r in caplog.records)
    for K, prev in ((np.eye(N), 0.05), (related, 0.5)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=name):
            threshold(cc, decompose(K), prevalence=prev)
        assert not any("not calibrated" in r.getMessage() for r in caplog.records)
    # free intercept: no prevalence to compare with, no warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=name):
        threshold(cc, related)
    assert not caplog.records
    # a prior on the prevalence is compared through its mean (Beta(1, 19): 0.05)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=name):
        threshold(cc, related, prevalence="Beta(1, 19)")
    assert any("not calibrated" in r.getMessage() for r in caplog.records)
