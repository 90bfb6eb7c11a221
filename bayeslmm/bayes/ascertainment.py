"""Is a case-control sample ascertained among relatives? The design the threshold model's
intervals are not calibrated for.

The threshold model (:mod:`bayeslmm.bayes.models.threshold`) places the threshold from the
population prevalence K and uses the ordinary probit likelihood of the sample. For a sample
selected on case status that is the right likelihood when the selected samples are
unrelated (each factor of Pr(selected | theta) has expectation s_0 + (s_1 - s_0) K whatever
theta is). Among relatives it is not: the sample's likelihood has the further factor
Pr(the unselected relatives are what the design made them | y_sample, theta), which depends
on h2 through the genetic covariance sigma_g2 K_ij between selected and unselected animals.
Dropping it made 95% intervals cover the true h2 in only 33-86% of replicates in
simulations on the HS mice; fitting the whole cohort the sample was selected from (the
unselected animals with their case status) covered in 0.93, population samples in 0.96
(``benchmarks/bench_threshold.py coverage``, docs/binary.md).

:func:`ascertainment_check` flags the design -- a case proportion far above the prevalence
*and* close relatives in the kernel -- and :func:`threshold` logs its message as a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bayeslmm.covariance.decomposition import Decomposition

__all__ = ["ASCERTAINED_RATIO", "RELATIVE_K", "AscertainmentCheck", "ascertainment_check",
           "close_relatives"]

log = logging.getLogger(__name__)

#: P / K at or above which a case-control sample counts as ascertained (with P - K also
#: more than 3 binomial SEs, so that a small population sample is not flagged by chance)
ASCERTAINED_RATIO = 2.0
#: K_ij at or above which two samples count as close relatives (first cousins: 0.125)
RELATIVE_K = 0.125
#: share of samples with a close relative above which the kernel counts as related
RELATED_SHARE = 0.01
_BLOCK = 512  # rows of K formed at a time from a decomposition (memory O(block N))


@dataclass(frozen=True)
class AscertainmentCheck:
    """Verdict of :func:`ascertainment_check`.

    Attributes
    ----------
    case_proportion, prevalence : float
        P (sample) and K (population).
    N : int
    n_with_relative : int
        Samples with at least one other sample at K_ij >= :data:`RELATIVE_K`.
    ascertained : bool
        P >= :data:`ASCERTAINED_RATIO` K and P - K > 3 sqrt(K (1 - K) / N).
    related : bool
        At least :data:`RELATED_SHARE` of the samples have a close relative.
    """

    case_proportion: float
    prevalence: float
    N: int
    n_with_relative: int
    ascertained: bool
    related: bool

    @property
    def uncalibrated(self) -> bool:
        """True for the design the intervals are not calibrated for."""
        return self.ascertained and self.related

    def message(self) -> str:
        return (f"the sample's case proportion P = {self.case_proportion:.3f} is far above the "
                f"prevalence K = {self.prevalence:.3g} (an ascertained case-control sample) "
                f"and {self.n_with_relative} of {self.N} samples have a close relative "
                f"(K_ij >= {RELATIVE_K}): the threshold model's credible intervals for h2 are "
                "not calibrated for this design (in simulations on related mice 95% intervals "
                "covered the true h2 in 33-86% of replicates; docs/binary.md). If the cohort the "
                "sample was selected from is genotyped, fit all of it (the unselected animals "
                "with their case status, controls if every case was kept): the selection is "
                "then ignorable and the intervals calibrated.")


def close_relatives(K: np.ndarray | Decomposition, cutoff: float = RELATIVE_K) -> np.ndarray:
    """Per sample, whether another sample has K_ij >= cutoff.

    Parameters
    ----------
    K : ndarray (N, N) or Decomposition
        The kernel, or its decomposition U diag(S) U' (rows of K are then formed in blocks:
        O(N^2 r) time, O(block N) memory).

    Returns
    -------
    ndarray of bool, shape (N,)
    """
    if isinstance(K, Decomposition):
        US = K.U * K.S
        out = np.empty(K.N, dtype=bool)
        for start in range(0, K.N, _BLOCK):
            stop = min(start + _BLOCK, K.N)
            rows = US[start:stop] @ K.U.T
            rows[np.arange(stop - start), np.arange(start, stop)] = -np.inf
            out[start:stop] = (rows >= cutoff).any(axis=1)
        return out
    K = np.asarray(K, dtype=np.float64)
    off = K >= cutoff
    np.fill_diagonal(off, False)
    return off.any(axis=1)


def ascertainment_check(y, K: np.ndarray | Decomposition,
                        prevalence: float) -> AscertainmentCheck:
    """Flag an ascertained case-control sample of relatives (module docstring).

    Parameters
    ----------
    y : array_like, shape (N,)
        The trait coded 0/1 (no missing values).
    K : ndarray (N, N) or Decomposition
        The kernel of the same samples.
    prevalence : float
        The population prevalence K.

    Returns
    -------
    AscertainmentCheck
        The kernel is only inspected when the sample is ascertained (otherwise
        ``n_with_relative`` is 0 and ``related`` False: the verdict does not need it).
    """
    y = np.asarray(y, dtype=np.float64)
    N = y.size
    P = float(y.mean())
    se = np.sqrt(prevalence * (1.0 - prevalence) / N)
    ascertained = bool(P >= ASCERTAINED_RATIO * prevalence and P - prevalence > 3.0 * se)
    n_rel = int(close_relatives(K).sum()) if ascertained else 0
    return AscertainmentCheck(case_proportion=P, prevalence=float(prevalence), N=N,
                              n_with_relative=n_rel, ascertained=ascertained,
                              related=n_rel >= RELATED_SHARE * N)
