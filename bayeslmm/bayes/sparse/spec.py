"""The command line's ``--prior NAME=SPEC`` for the sparse SNP priors (docs/sparse-priors.md).

The sparse families take their priors as numbers or parameter pairs (:func:`bayeslmm.bayes.
sparse.bayesc.bayesc`: a number fixes a parameter, a pair is its conjugate prior). The command
line writes priors as the other models do (``--prior pi='Beta(1, 9)'``); this module turns
those into the keyword arguments of the family's sampler, refusing in one line what the
sampler's conjugate updates cannot take:

* pi (BayesC's inclusion probability, eq. S4): ``Beta(a, b)``, ``Uniform()`` (= Beta(1, 1))
  or a number in (0, 1), fixed;
* a variance (sigma_b2, sigma_g2, sigma_e2; eqs. S5, S6): ``InverseGamma(alpha, beta)``, which
  is Scaled-Inv-chi2(nu = 2 alpha, s2 = beta / alpha), ``Jeffreys`` (p ∝ 1/x, nu = 0) or a
  positive number, fixed;
* BSLMM's h and rho (eq. B3): GEMMA's ``Uniform(0, 1)`` (the default) or a number, fixed
  (GEMMA's ``-hmin = -hmax``), h in [0, 1), rho in [0, 1]; its pi a number in (0, 1), fixed,
  or ``log10_pi=Uniform(a, b)``, GEMMA's ``-pmin a -pmax b`` (default a = log10(1/P), b = 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from bayeslmm.bayes.priors import parse_prior
from bayeslmm.errors import InputError

__all__ = ["PRIOR_NAMES", "sparse_prior_kwargs"]

#: the parameters each sparse family takes a prior on, by the sampler's argument names
PRIOR_NAMES = {"bayesc": ("pi", "sigma_b2", "sigma_e2"), "bayesr": ("sigma_g2", "sigma_e2"),
               "bslmm": ("h", "rho", "pi", "log10_pi")}


def _number(spec: str) -> float | None:
    try:
        return float(spec)
    except ValueError:
        return None


def _pi(spec: str) -> float | tuple[float, float]:
    value = _number(spec)
    if value is not None:
        return value  # fixed; the sampler checks 0 < pi < 1
    prior = parse_prior(spec)
    if prior.family == "Beta":
        return prior.params["alpha"], prior.params["beta"]
    if prior.family == "Uniform" and (prior.params["lower"], prior.params["upper"]) == (0, 1):
        return 1.0, 1.0
    raise InputError(f"--prior pi={spec}: pi takes Beta(a, b) (conjugate) or a number in "
                     "(0, 1), fixed")


def _variance(name: str, spec: str) -> float | tuple[float, float]:
    value = _number(spec)
    if value is not None:
        return value  # fixed; the sampler checks it is positive
    prior = parse_prior(spec)
    if prior.family == "InverseGamma":  # = Scaled-Inv-chi2(2 alpha, beta / alpha)
        alpha, beta = prior.params["alpha"], prior.params["beta"]
        return 2.0 * alpha, beta / alpha
    if prior.family == "Jeffreys":
        return 0.0, 0.0
    raise InputError(f"--prior {name}={spec}: {name} takes InverseGamma(alpha, beta) or "
                     "Jeffreys (conjugate) or a positive number, fixed")


def _gemma(name: str, spec: str) -> float | tuple[float, float] | None:
    """BSLMM's h, rho, pi or log10_pi (GEMMA's priors, :func:`bayeslmm.bayes.sparse.bslmm.
    bslmm`): a fixed number, None for GEMMA's U(0, 1), or log pi's bounds (natural log)."""
    value = _number(spec)
    interval = {"h": "[0, 1)", "rho": "[0, 1]", "pi": "(0, 1)"}.get(name)
    if value is not None and interval is not None:
        if (0.0 < value if name == "pi" else 0.0 <= value) and \
                (value <= 1.0 if name == "rho" else value < 1.0):
            return value
        raise InputError(f"--prior {name}={spec}: a fixed {name} lies in {interval}")
    prior = parse_prior(spec) if value is None else None
    if name in ("h", "rho") and prior is not None and prior.family == "Uniform" and \
            (prior.params["lower"], prior.params["upper"]) == (0, 1):
        return None
    if name == "log10_pi" and prior is not None and prior.family == "Uniform" and \
            prior.params["upper"] <= 0:
        return prior.params["lower"] * math.log(10.0), prior.params["upper"] * math.log(10.0)
    raise InputError(f"--prior {name}={spec}: BSLMM takes GEMMA's priors, h and rho "
                     "Uniform(0, 1) or a number (fixed), pi a number in (0, 1) (fixed), "
                     "log10_pi Uniform(a, b) with b <= 0 (GEMMA's -pmin a -pmax b)")


def sparse_prior_kwargs(priors: Mapping[str, str], model: str) -> dict:
    """``{"pi": "Beta(1, 9)", "sigma_e2": "1.0"}`` -> the sampler's keyword arguments
    (``{"pi": (1.0, 9.0), "sigma_e2": 1.0}``) for the family ``model``.

    Raises
    ------
    InputError
        A parameter the family does not have, or a prior its sampler cannot take.
    """
    names = PRIOR_NAMES[model]
    out: dict = {}
    for name, spec in priors.items():
        if name not in names:
            raise InputError(f"--prior {name}: the {model} model has priors on "
                             f"{', '.join(names)}")
        if model == "bslmm":
            out[name] = _gemma(name, spec)
        else:
            out[name] = _pi(spec) if name == "pi" else _variance(name, spec)
    if model == "bslmm":
        if "pi" in out and "log10_pi" in out:
            raise InputError("--prior pi and log10_pi: give one (pi fixes it, log10_pi is "
                             "its uniform prior)")
        if "log10_pi" in out:
            out["log_pi_bounds"] = out.pop("log10_pi")
    return out
