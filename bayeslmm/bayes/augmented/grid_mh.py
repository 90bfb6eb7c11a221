"""An exact independence Metropolis-Hastings update of a scalar whose proposal tabulates
the target itself on a grid: a coarse table over the whole range and a fine window where
the target lives (the h2 and prevalence steps of :mod:`bayeslmm.bayes.augmented.threshold`).
The acceptance ratio uses the exact density, so the chain keeps the target whatever the
table's resolution; only the acceptance rate depends on it (0.92-0.95 measured)."""

from __future__ import annotations

import numpy as np

__all__ = ["COARSE_T", "T_MAX", "independence_mh"]

T_MAX = 12.0  # |x| <= 12: for t = log sigma_g2, h2 in (6e-6, 1 - 6e-6); prior mass outside ~1e-5
N_COARSE = 49
N_FINE = 64
COARSE_SHARE = 0.05
WINDOW_DROP = 30.0  # the fine window spans the coarse points within 30 log units of the top
COARSE_T = np.linspace(-T_MAX, T_MAX, N_COARSE)


def _cells(lp: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Log probabilities of piecewise-constant proposal cells."""
    m = lp.max(axis=-1, keepdims=True)
    w = np.exp(lp - m) * width
    with np.errstate(divide="ignore"):  # a cell 745 log units below the top: never drawn
        return np.log(w / w.sum(axis=-1, keepdims=True))


def independence_mh(lp_coarse: np.ndarray, logp_fine, logp, x: np.ndarray,
                     rng: np.random.Generator):
    """One exact independence MH update per chain of a scalar x in [-T_MAX, T_MAX] (t = log
    sigma_g2, or the logit of the prevalence), targeting ``logp`` ((C, G) -> (C, G)). The
    proposal tabulates the target: ``lp_coarse`` on :data:`COARSE_T`, then ``logp_fine``
    (which may be approximate) on 64 cells of the window where the target lives."""
    C = x.shape[0]
    coarse = COARSE_T
    # coarse cells: the larger end's density, floored so that every cell can be proposed
    lp_cell = np.maximum(lp_coarse[:, 1:], lp_coarse[:, :-1])
    lp_cell = np.maximum(lp_cell, lp_cell.max(axis=1, keepdims=True) - 12.0)
    h_c = coarse[1] - coarse[0]
    logq_c = _cells(lp_cell, h_c)  # (C, 48)
    near = lp_coarse >= lp_coarse.max(axis=1, keepdims=True) - WINDOW_DROP
    lo = np.clip(coarse[np.argmax(near, axis=1)] - h_c, -T_MAX, T_MAX)
    hi = np.clip(coarse[N_COARSE - 1 - np.argmax(near[:, ::-1], axis=1)] + h_c, -T_MAX, T_MAX)
    h_f = (hi - lo) / N_FINE
    mids = lo[:, None] + h_f[:, None] * (np.arange(N_FINE) + 0.5)
    logq_f = _cells(logp_fine(mids), h_f[:, None])  # (C, 64)

    def log_q(v):
        jc = np.clip(((v + T_MAX) / h_c).astype(int), 0, N_COARSE - 2)
        qc = np.exp(np.take_along_axis(logq_c, jc[:, None], 1)[:, 0]) / h_c
        inside = (v >= lo) & (v < hi)
        jf = np.clip(((v - lo) / h_f).astype(int), 0, N_FINE - 1)
        qf = np.where(inside, np.exp(np.take_along_axis(logq_f, jf[:, None], 1)[:, 0]) / h_f,
                      0.0)
        return np.log((1.0 - COARSE_SHARE) * qf + COARSE_SHARE * qc)

    use_c = rng.uniform(size=C) < COARSE_SHARE
    u = rng.uniform(size=C)
    jc = _categorical(logq_c, rng)
    jf = _categorical(logq_f, rng)
    prop = np.where(use_c, -T_MAX + (jc + u) * h_c, lo + (jf + u) * h_f)
    both = logp(np.column_stack([x, prop]))
    log_alpha = both[:, 1] - both[:, 0] + log_q(x) - log_q(prop)
    accept = np.log(rng.uniform(size=C)) < log_alpha
    return np.where(accept, prop, x), accept


def _categorical(logp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(np.exp(logp), axis=1)
    u = rng.uniform(size=(logp.shape[0], 1)) * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=1), logp.shape[1] - 1)
