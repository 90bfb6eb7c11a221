"""Convergence checks of a posterior: R-hat, bulk ESS, divergences, one warning.

Used by every sampler of the package (NUTS through :func:`bayeslmm.bayes.sampling.sample`,
the several-kernel grid and importance sampler), so it sits below all of them.
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from bayeslmm.errors import SamplingWarning

__all__ = ["ESS_PER_CHAIN_MIN", "RHAT_MAX", "check_diagnostics"]

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # ArviZ's rule of thumb: bulk ESS >= 100 per chain


def _free_names(idata: xr.DataTree) -> list[str]:
    post = idata["posterior"].to_dataset()
    keep = []
    for name, da in post.data_vars.items():
        if name.endswith("_raw") or name == "g":  # per-sample latents: many, checked via h2
            continue
        if float(np.ptp(da.values)) == 0.0:  # fixed at a value (empirical Bayes)
            continue
        keep.append(name)
    return keep


def _min_max(ess, rh, out: dict) -> None:
    if ess is not None:
        ess_vals = np.concatenate([np.ravel(v.values) for v in ess.data_vars.values()])
        out["min_ess_bulk"] = float(np.nanmin(ess_vals))
        if rh is not None:
            rh_vals = np.concatenate([np.ravel(v.values) for v in rh.data_vars.values()])
            out["max_rhat"] = float(np.nanmax(rh_vals))


def check_diagnostics(idata: xr.DataTree, *, warn: bool = True) -> dict[str, float | int]:
    """R-hat (rank-normalised), bulk ESS and divergences of the scalar-ish parameters.

    Returns a dict ``n_divergences``, ``max_rhat``, ``min_ess_bulk`` and, when ``warn``,
    issues one :class:`~bayeslmm.errors.SamplingWarning` listing every problem found.
    """
    import arviz_stats as azs

    names = _free_names(idata)
    n_chains = idata["posterior"].sizes["chain"]
    out: dict[str, float | int] = {"n_divergences": 0, "max_rhat": float("nan"),
                                   "min_ess_bulk": float("nan")}
    if "sample_stats" in idata.children and "diverging" in idata["sample_stats"]:
        out["n_divergences"] = int(idata["sample_stats"]["diverging"].sum())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Found dimension named 'sample'")
        ess = azs.ess(idata, var_names=names, method="bulk") if names else None
        rh = azs.rhat(idata, var_names=names) if names and n_chains > 1 else None
        # All NaN (one draw): reported below as "could not be computed", not as numpy noise.
        warnings.filterwarnings("ignore", message="All-NaN slice", category=RuntimeWarning)
        _min_max(ess, rh, out)
    problems = []
    if out["n_divergences"]:
        problems.append(f"{out['n_divergences']} divergent transitions (raise target_accept "
                        "or reconsider the priors)")
    if np.isfinite(out["max_rhat"]) and out["max_rhat"] > RHAT_MAX:
        problems.append(f"R-hat up to {out['max_rhat']:.3f} > {RHAT_MAX} (chains disagree; "
                        "sample longer)")
    if np.isfinite(out["min_ess_bulk"]) and out["min_ess_bulk"] < ESS_PER_CHAIN_MIN * n_chains:
        problems.append(f"bulk ESS as low as {out['min_ess_bulk']:.0f} < "
                        f"{ESS_PER_CHAIN_MIN * n_chains} (draw more)")
    if names and not np.isfinite(out["min_ess_bulk"]):
        problems.append("bulk ESS could not be computed (too few draws; draw more)")
    if names and n_chains > 1 and not np.isfinite(out["max_rhat"]):
        problems.append("R-hat could not be computed (too few draws; draw more)")
    if warn and problems:
        warnings.warn("unreliable posterior: " + "; ".join(problems), SamplingWarning,
                      stacklevel=3)
    return out
