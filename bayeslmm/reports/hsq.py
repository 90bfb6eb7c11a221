"""GCTA's ``.hsq`` layout for every fit, with one number format.

One trait (:class:`~bayeslmm.estimation.reml.VarianceComponentFit`, one kernel or several,
with GCTA's liability-scale rows under ``prevalence``), the matrix-free fit
(:class:`~bayeslmm.estimation.krylov.KrylovFit`, with the Monte Carlo error of h2 as a row of
its own) and several traits (:class:`~bayeslmm.estimation.multitrait.MultiTraitFit`; for two,
GCTA's ``--reml-bivar`` rows) are all written by :func:`hsq_text`:

* a header ``Source\\tVariance\\tSE``, then one row per quantity;
* estimates and SEs in GCTA's fixed 6 decimals, or 6 significant digits in scientific
  notation for tiny or huge values (:func:`fmt_number`); a NaN SE (not identifiable) is
  written ``nan``, never 0;
* several GRMs are GCTA's ``--mgrm`` rows ``V(G1)``, ``V(G2)``, ``V(G1)/Vp``... in the
  order given, the user's names in a last line ``Components: G1 = name1; G2 = name2``;
* the information matrix behind the SEs (``--se-method``) is named in the run's log, not in
  the file: a line without a tab would break the many scripts that read GCTA's rows as
  ``name<TAB>value``;
* rows with one value (``logL``, ``logL0``, ``LRT``, ``Pval``, an MC error) have no SE
  column; ``df`` and ``n`` are integers.

The two-trait layout, tab-separated, as GCTA's ``--reml-bivar``::

    V(G)_tr1, V(G)_tr2, C(G)_tr12, V(e)_tr1, V(e)_tr2, C(e)_tr12, Vp_tr1, Vp_tr2,
    V(G)/Vp_tr1, V(G)/Vp_tr2, rG, logL, logL0 (r_g = 0), LRT, df, Pval, n

with ``rE`` after ``rG`` and the profile-likelihood interval of r_g as ``rG_CI95`` (lower,
upper) after ``n``; a parser that reads GCTA's rows by name is unaffected.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from bayeslmm.errors import InputError
from bayeslmm.reports.writers import StagedOutputs, write_text

__all__ = ["fmt_number", "hsq_rows", "hsq_text", "log_fit", "write_hsq"]

log = logging.getLogger("bayeslmm.cli")  # the run's log, where the command line reads it

#: rows that hold one value (no SE column)
SCALAR_ROWS = frozenset({"logL", "logL0", "LRT", "df", "Pval", "n"})
INTEGER_ROWS = frozenset({"df", "n"})


def fmt_number(x: float) -> str:
    """GCTA's fixed 6 decimals for ordinary values; 6 significant digits in scientific
    notation for tiny or huge ones, which %.6f would print as 0.000000 or 20 digits."""
    x = float(x)
    if not np.isfinite(x) or x == 0 or 1e-3 <= abs(x) < 1e7:
        return f"{x:.6f}"
    return f"{x:.6e}"


def _multitrait_rows(fit) -> list[tuple]:
    if fit.T != 2:
        rows = [(str(n), r["estimate"], r["se"]) for n, r in fit.summary().iterrows()]
        return rows + [("logL", fit.loglik, None), ("n", fit.nobs, None)]
    p, se = fit.params, fit.bse
    d = fit.derived()
    rows = [("V(G)_tr1", p["Vg_1"], se["Vg_1"]), ("V(G)_tr2", p["Vg_2"], se["Vg_2"]),
            ("C(G)_tr12", p["Cg_12"], se["Cg_12"]), ("V(e)_tr1", p["Ve_1"], se["Ve_1"]),
            ("V(e)_tr2", p["Ve_2"], se["Ve_2"]), ("C(e)_tr12", p["Ce_12"], se["Ce_12"])]
    for name, key in (("Vp_tr1", "Vp_1"), ("Vp_tr2", "Vp_2"), ("V(G)/Vp_tr1", "h2_1"),
                      ("V(G)/Vp_tr2", "h2_2"), ("rG", "rg_12"), ("rE", "re_12")):
        rows.append((name, d.loc[key, "estimate"], d.loc[key, "se"]))
    rows.append(("logL", fit.loglik, None))
    if fit.tests is not None:
        t = fit.tests.loc["r_g=0"]
        rows += [("logL0", t["loglik_null"], None), ("LRT", t["LR"], None), ("df", 1, None),
                 ("Pval", t["p"], None)]
    rows.append(("n", fit.nobs, None))
    if fit.rg_ci is not None:
        rows.append((f"rG_CI{round(100 * fit.ci_level)}", fit.rg_ci[0], fit.rg_ci[1]))
    return rows


def hsq_rows(fit, prevalence: float | None = None,
             case_proportion: float | None = None) -> list[tuple]:
    """(name, value, SE or None) for each row of the fit's ``.hsq``; a row whose name is
    None is a line of text (GCTA's note before the liability-scale rows)."""
    if hasattr(fit, "traits"):  # several traits
        if prevalence is not None:
            raise InputError("the liability scale (--prevalence) is for one trait")
        return _multitrait_rows(fit)
    if prevalence is not None and not hasattr(fit, "liability_h2"):
        raise InputError("this fit has no liability-scale transformation (--prevalence)")
    rows: list[tuple] = []
    table = (fit.summary(prevalence, case_proportion) if prevalence is not None
             else fit.summary())
    # several GRMs: GCTA's --mgrm names, V(G1), V(G2)... in --mgrm order; the user's names
    # in a legend line after the rows
    gcta = {f"V({c})": f"V(G{j + 1})" for j, c in enumerate(getattr(fit, "components", ()))
            } if getattr(fit, "k", 1) > 1 else {}
    for name, row in table.iterrows():
        name = str(name)
        head, sep, tail = name.partition("/")
        name = gcta.get(head, head) + sep + tail
        if name.endswith("/Vp_L") and not (rows and str(rows[-1][0]).endswith("_L")):
            lia = fit.liability_h2(prevalence, case_proportion)
            rows.append((None, "The estimate of variance explained on the observed scale is "
                         "transformed to that on the underlying scale:", None))
            rows.append((None, f"(Proportion of cases in the sample = "
                         f"{lia.case_proportion:.6f}; User-specified disease prevalence = "
                         f"{lia.prevalence:.6f})", None))
        scalar = name in SCALAR_ROWS or name.endswith("MC error")
        rows.append((name, row.Variance, None if scalar else row.SE))
    if gcta:
        rows.append((None, "Components: " + "; ".join(
            f"{g[2:-1]} = {u[2:-1]}" for u, g in gcta.items()), None))
    return rows


#: the information matrices behind the standard errors, by ``se_method``
SE_METHOD_NAMES = {"ai": "average", "observed": "observed", "expected": "expected (Fisher)"}


def se_line(fit) -> str:
    """The line that names the fit's standard-error convention."""
    m = getattr(fit, "se_method", "ai")
    return f"SE from the {SE_METHOD_NAMES[m]} information matrix (se_method = {m})"


def hsq_text(fit, prevalence: float | None = None,
             case_proportion: float | None = None) -> str:
    """The fit as the text of a GCTA ``.hsq`` file (see the module's docstring)."""
    lines = ["Source\tVariance\tSE"]
    for name, value, se in hsq_rows(fit, prevalence, case_proportion):
        if name is None:
            lines.append(value)
        elif name in INTEGER_ROWS:
            lines.append(f"{name}\t{int(value)}")
        elif se is None:
            lines.append(f"{name}\t{fmt_number(value)}")
        else:
            lines.append(f"{name}\t{fmt_number(value)}\t{fmt_number(se)}")
    return "\n".join(lines) + "\n"


def write_hsq(fit, path: str | os.PathLike[str], staged: StagedOutputs | None = None, *,
              prevalence: float | None = None, case_proportion: float | None = None) -> Path:
    """Write :func:`hsq_text` of ``fit`` to ``path`` (staged with the run's other outputs)."""
    return write_text(path, hsq_text(fit, prevalence, case_proportion), staged)


def log_fit(fit, prevalence: float | None = None,
            logger: logging.Logger | None = None) -> None:
    """Log a REML/ML fit as a user reads it: the ``.hsq`` rows, the profile CI of h2, GEMMA's
    pve next to h2 (they differ for a kernel whose mean diagonal is not 1), and a boundary
    estimate; for several traits the covariance table, the r_g interval and the LRTs."""
    logger = logger or log
    if hasattr(fit, "traits"):
        logger.info("Multi-trait %s: %d traits, N=%d (complete cases; %d dropped), "
                    "logL=%.3f, converged=%s\n%s", "REML" if fit.reml else "ML", fit.T,
                    fit.nobs, fit.n_dropped, fit.loglik, fit.converged,
                    fit.summary().to_string())
        logger.info("%s.", se_line(fit))
        if fit.rg_ci is not None:
            logger.info("r_g 95%% profile-likelihood CI: [%.4f, %.4f]", *fit.rg_ci)
        if fit.tests is not None:
            logger.info("Likelihood-ratio tests:\n%s", fit.tests.to_string())
        return
    logger.info("%s (%s): converged=%s, N=%d\n%s", "REML" if fit.reml else "ML",
                fit.algorithm, fit.converged, fit.N, hsq_text(fit, prevalence).rstrip())
    logger.info("%s.", se_line(fit))
    if fit.h2_ci is not None:
        logger.info("h2 95%% profile-likelihood CI: [%.4f, %.4f]", *fit.h2_ci)
    if fit.k == 1:
        logger.info("V(G)/Vp = %.6f; GEMMA's pve (K scaled to mean diagonal 1; here tr(K)/N "
                    "= %.6f) = %.6f.", fit.h2, fit.mean_diag, fit.pve_gemma)
    if fit.boundary:
        logger.info("The estimate lies on the boundary (%s).", fit.boundary)
