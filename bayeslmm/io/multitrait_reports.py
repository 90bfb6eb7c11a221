"""GCTA ``--reml-bivar`` layout of a multi-trait fit (the ``.hsq`` of two traits).

GCTA writes, tab-separated::

    Source      Variance    SE
    V(G)_tr1    ...
    V(G)_tr2    ...
    C(G)_tr12   ...
    V(e)_tr1    ...
    V(e)_tr2    ...
    C(e)_tr12   ...
    Vp_tr1      ...
    Vp_tr2      ...
    V(G)/Vp_tr1 ...
    V(G)/Vp_tr2 ...
    rG          ...
    logL        ...
    logL0       ...   (the fit with rG = 0; GCTA's --reml-bivar-lrt-rg 0)
    LRT         ...
    df          1
    Pval        ...
    n           ...

We add ``rE`` after ``rG`` and the profile-likelihood interval of r_g as ``rG_CI95`` (two
columns: lower, upper) after ``n``; a parser that reads GCTA's rows by name is unaffected.
"""

from __future__ import annotations

import os
from pathlib import Path

from bayeslmm.io.reports import StagedOutputs, write_text

__all__ = ["bivar_hsq_text", "write_bivar_hsq"]


def bivar_hsq_text(fit) -> str:
    """The ``.hsq`` text of a two-trait :class:`~bayeslmm.multitrait.MultiTraitFit`."""
    if fit.T != 2:
        from bayeslmm.errors import InputError

        raise InputError(f"GCTA's --reml-bivar layout is for two traits, the fit has {fit.T}")
    p, se = fit.params, fit.bse
    d = fit.derived()
    rows = [("V(G)_tr1", p["Vg_1"], se["Vg_1"]), ("V(G)_tr2", p["Vg_2"], se["Vg_2"]),
            ("C(G)_tr12", p["Cg_12"], se["Cg_12"]), ("V(e)_tr1", p["Ve_1"], se["Ve_1"]),
            ("V(e)_tr2", p["Ve_2"], se["Ve_2"]), ("C(e)_tr12", p["Ce_12"], se["Ce_12"])]
    for name, key in (("Vp_tr1", "Vp_1"), ("Vp_tr2", "Vp_2"), ("V(G)/Vp_tr1", "h2_1"),
                      ("V(G)/Vp_tr2", "h2_2"), ("rG", "rg_12"), ("rE", "re_12")):
        rows.append((name, d.loc[key, "estimate"], d.loc[key, "se"]))
    lines = ["Source\tVariance\tSE"]
    lines += [f"{n}\t{v:.6f}\t{s:.6f}" for n, v, s in rows]
    lines.append(f"logL\t{fit.loglik:.3f}")
    if fit.tests is not None:
        t = fit.tests.loc["r_g=0"]
        lines += [f"logL0\t{t['loglik_null']:.3f}", f"LRT\t{t['LR']:.3f}", "df\t1",
                  f"Pval\t{t['p']:.4g}"]
    lines.append(f"n\t{fit.nobs}")
    if fit.rg_ci is not None:
        lines.append(f"rG_CI{round(100 * fit.ci_level)}\t{fit.rg_ci[0]:.6f}\t{fit.rg_ci[1]:.6f}")
    return "\n".join(lines) + "\n"


def write_bivar_hsq(fit, path: str | os.PathLike[str],
                    staged: StagedOutputs | None = None) -> Path:
    """Write :func:`bivar_hsq_text` to ``path`` (staged with the run's other outputs)."""
    return write_text(path, bivar_hsq_text(fit), staged)
