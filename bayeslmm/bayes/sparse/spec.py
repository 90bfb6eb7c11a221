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
  positive number, fixed.
"""

from __future__ import annotations

from collections.abc import Mapping

from bayeslmm.bayes.priors import parse_prior
from bayeslmm.errors import InputError

__all__ = ["PRIOR_NAMES", "sparse_prior_kwargs"]

#: the parameters each sparse family takes a prior on, by the sampler's argument names
PRIOR_NAMES = {"bayesc": ("pi", "sigma_b2", "sigma_e2"), "bayesr": ("sigma_g2", "sigma_e2")}


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
        out[name] = _pi(spec) if name == "pi" else _variance(name, spec)
    return out
