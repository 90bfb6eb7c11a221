"""GCTA's remedies for a GRM that is not positive semi-definite.

bayeslmm fits an indefinite K as it is (only V = sigma_g2 K + sigma_e2 I must be PD, which
limits the h2 search to h2 < 1 / (1 - s_min); see :attr:`bayeslmm.Decomposition.h2_max`).
These two functions are GCTA's alternatives, for users who want a PSD kernel instead:

* :func:`relatedness_cutoff` drops one of each pair of samples with K_ij > cutoff (GCTA's
  ``--grm-cutoff``; close relatives and duplicates are what make a GRM from missing
  genotypes indefinite, and what "unrelated-sample" heritability analyses remove anyway);
* :func:`bend` replaces K's negative eigenvalues by small positive ones and rescales the
  spectrum to keep the trace (GCTA's ``bending_eigenval``, used by its ``bend_A`` when V is
  not PD; the bending of Hayes & Hill 1981).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bayeslmm.errors import InputError, KernelError

__all__ = ["BentKernel", "bend", "bend_eigenvalues", "relatedness_cutoff"]

log = logging.getLogger(__name__)


def relatedness_cutoff(K: np.ndarray, cutoff: float) -> np.ndarray:
    """Samples kept after GCTA's ``--grm-cutoff``: one of each pair with K_ij > cutoff dropped.

    GCTA's rule (``rm_cor_indi``): list every pair (i > j) with K_ij > cutoff; count how many
    listed pairs each sample is in; from each pair remove the sample with the larger count
    (the first of the pair, i, on a tie). A sample in many close pairs is removed once and
    its relatives are kept.

    Parameters
    ----------
    K : ndarray, shape (N, N)
        The GRM (only its strict lower triangle is read).
    cutoff : float
        Relatedness above which a pair counts as related (GCTA users take 0.025 or 0.05).

    Returns
    -------
    ndarray of bool, shape (N,)
        True for the samples kept.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise KernelError(f"the GRM must be a square matrix, got shape {K.shape}")
    if not np.isfinite(cutoff):
        raise InputError(f"--grm-cutoff must be a finite number, got {cutoff}")
    i, j = np.nonzero(np.tril(K > cutoff, -1))  # pairs (i > j), GCTA's ID1 = i, ID2 = j
    N = K.shape[0]
    count = np.bincount(i, minlength=N) + np.bincount(j, minlength=N)
    # GCTA swaps the pair when count(ID1) < count(ID2), then removes ID1.
    removed = np.where(count[i] < count[j], j, i)
    keep = np.ones(N, dtype=bool)
    keep[removed] = False
    log.info("GRM cutoff %g: %d pair(s) above it, %d of %d samples removed (GCTA's rule), "
             "%d kept.", cutoff, i.size, N - int(keep.sum()), N, int(keep.sum()))
    return keep


@dataclass(frozen=True)
class BentKernel:
    """Result of :func:`bend`.

    Attributes
    ----------
    K : ndarray, shape (N, N)
        The bent kernel U diag(s') U'.
    n_negative : int
        Number of negative eigenvalues replaced.
    min_eigenvalue_before, min_eigenvalue_after : float
    max_abs_change : float
        Largest |K'_ij - K_ij|, the size of the edit.
    """

    K: np.ndarray
    n_negative: int
    min_eigenvalue_before: float
    min_eigenvalue_after: float
    max_abs_change: float


def bend_eigenvalues(s: np.ndarray) -> np.ndarray:
    """GCTA's bending of a spectrum (``bending_eigenval``; Hayes & Hill 1981).

    With the negative eigenvalues s_k < 0, S = sum_k s_k and p = |s_k| of the negative one
    closest to zero, each s_k < 0 becomes p (S - s_k)^2 / (100 S^2 + 1) > 0; then every
    eigenvalue is multiplied by mean(s) / mean(s'), so the trace (the mean diagonal of K,
    what h2 is scaled by) is unchanged. The most negative eigenvalue becomes p (S - s_1)^2 / W,
    which is 0 when it is the only negative one: the result is PSD, not always PD. A
    spectrum without negative values is returned as is.
    """
    s = np.asarray(s, dtype=np.float64)
    neg = s < 0
    if not neg.any():
        return s.copy()
    S = float(s[neg].sum())
    p = float(-s[neg].max())  # GCTA keeps the last negative one in ascending order
    W = S * S * 100.0 + 1.0
    out = s.copy()
    out[neg] = p * (S - s[neg]) ** 2 / W
    return out * (s.mean() / out.mean())


def bend(K: np.ndarray) -> BentKernel:
    """Bend an indefinite kernel to a positive semi-definite one by GCTA's rule.

    K = U diag(s) U' becomes U diag(s') U' with s' from :func:`bend_eigenvalues`: the
    eigenvectors are kept, negative eigenvalues become small positive ones and the trace is
    preserved. O(N^3) (one eigendecomposition).
    """
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise KernelError(f"the kernel must be a square matrix, got shape {K.shape}")
    s, U = np.linalg.eigh(K)
    s2 = bend_eigenvalues(s)
    n_neg = int((s < 0).sum())
    Kb = (U * s2) @ U.T
    Kb = 0.5 * (Kb + Kb.T)
    change = float(np.max(np.abs(Kb - K))) if n_neg else 0.0
    log.info("GRM bending (GCTA): %d negative eigenvalue(s), smallest %.4g -> %.4g; trace "
             "kept; largest change of an entry %.3g.", n_neg, s[0], s2.min(), change)
    return BentKernel(K=Kb if n_neg else K.copy(), n_negative=n_neg,
                      min_eigenvalue_before=float(s[0]), min_eigenvalue_after=float(s2.min()),
                      max_abs_change=change)
