"""Declarative priors for the Bayesian mixed models.

A prior specification is a mapping from a parameter name to either

* a string ``"Name(number, number, key=number)"`` such as ``"Beta(1, 1)"`` or
  ``"InverseGamma(0.001, 0.001)"`` -- the same text works on the command line as
  ``--prior h2='Beta(1, 1)'``. It is parsed with :mod:`ast` into a literal call and never
  evaluated;
* a :class:`Prior` (the parsed form);
* an unnamed PyMC distribution (``pm.HalfNormal.dist(2.0)``) or a callable
  ``f(name, **kwargs) -> TensorVariable`` called inside the model context, for full control.

Parameters (names follow the notes): ``sigma_g2``, ``sigma_e2`` or ``h2`` + ``Vp`` for the
variance components (the two parameterisations may not be mixed), and ``beta`` for the fixed
effects (one prior applied to every coefficient). Missing entries get the defaults of
:data:`DEFAULT_PRIORS`, the one table of default priors of every model family (and of every
path: command line, API, demo, every engine; docs/priors.md says why each was chosen):

* ``h2 ~ Beta(1, 1)`` and ``Vp ~ HalfNormal(2.5 var(y))`` (the default parameterisation);
* ``sigma_g2, sigma_e2 ~ HalfNormal(2.5 var(y))`` when the user chose that parameterisation;
* ``beta ~ Flat()``: the marginal posterior of the variance components is then the
  restricted likelihood (REML's) times their prior, the form that the exact quadrature, the
  Krylov engine and the two-trait model integrate beta out in.

Independent priors on sigma_g2 and sigma_e2 imply a prior on h2 = sigma_g2 / (sigma_g2 +
sigma_e2) that is generally not flat; :func:`implied_h2_prior` draws it and
:func:`plot_implied_h2_prior` shows it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

from bayeslmm.errors import InputError
from bayeslmm.likelihood.constants import LOG2PI

__all__ = [
    "DEFAULT_PRIORS",
    "DefaultPrior",
    "default_prior",
    "default_prior_table",
    "parse_assignments",
    "parse_prior_sets",
    "FAMILIES",
    "Family",
    "Prior",
    "default_priors",
    "implied_h2_prior",
    "parse_prior",
    "parse_priors",
    "plot_implied_h2_prior",
]

VARIANCE_NAMES = ("sigma_g2", "sigma_e2")
H2_NAMES = ("h2", "Vp")
ALL_NAMES = ("beta", "sigma_g2", "sigma_e2", "h2", "Vp")


@dataclass(frozen=True)
class DefaultPrior:
    """One row of :data:`DEFAULT_PRIORS`: a prior family and its parameters, the scale
    parameter multiplied by a statistic of the data (``scaled_by``, e.g. ``"var(y)"``).

    ``family`` is a key of :data:`FAMILIES`, or ``"Dirichlet"``/``"LKJ"``, which the builders
    that use them create themselves from ``params``.
    """

    family: str
    params: tuple[tuple[str, float], ...]
    scaled_by: str = ""
    text: str = ""  # how it reads where the parameters depend on the model (k, the link)

    def __str__(self) -> str:
        if self.text:
            return self.text
        inner = ", ".join(f"{v:g} {self.scaled_by}" if k == _SCALE_PARAM.get(self.family)
                          and self.scaled_by else f"{v:g}" for k, v in self.params)
        return f"{self.family}({inner})"

    def prior(self, scale: float = 1.0) -> Prior:
        """The :class:`Prior` on data whose ``scaled_by`` statistic is ``scale``."""
        key = _SCALE_PARAM.get(self.family)
        return Prior(self.family, {k: float(v * scale) if k == key and self.scaled_by
                                   else float(v) for k, v in self.params})


# the parameter that a data scale multiplies, by family
_SCALE_PARAM = {"HalfNormal": "sigma", "Normal": "sigma", "HalfCauchy": "beta",
                "HalfStudentT": "sigma"}

_VP = DefaultPrior("HalfNormal", (("sigma", 2.5),), "var(y)")
_FLAT = DefaultPrior("Flat", ())
_UNIFORM_H2 = DefaultPrior("Beta", (("alpha", 1.0), ("beta", 1.0)))

#: The one table of default priors, by model family (:mod:`bayeslmm.bayes.families`) and
#: quantity, read by every builder, the quadrature and the Krylov engine; logged once per
#: run and stored in the posterior's attributes (``default_priors``). docs/priors.md gives
#: the reasons. ``var(y)``: the phenotype's sample variance (per trait for two traits);
#: ``k``: the number of kernels.
DEFAULT_PRIORS: dict[str, dict[str, DefaultPrior]] = {
    "linear": {"h2": _UNIFORM_H2, "Vp": _VP, "beta": _FLAT,
               # only when the user puts a prior on one of the two variances
               "sigma_g2": _VP, "sigma_e2": _VP},
    "multikernel": {
        # (h2_1, ..., h2_k, 1 - h2_total) ~ Dirichlet(1/k, ..., 1/k, 1): the total h2 is
        # Beta(1, 1) as with one kernel, which it reduces to at k = 1
        "pi": DefaultPrior("Dirichlet", (), text="Dirichlet(1/k, ..., 1/k, 1) on (h2_1, ..., "
                           "h2_k, 1 - h2_total): h2_total ~ Beta(1, 1)"),
        "Vp": _VP, "beta": _FLAT, "sigma_g2": _VP, "sigma_e2": _VP},
    "multitrait": {"h2": _UNIFORM_H2,
                   "Vp": DefaultPrior("HalfNormal", (("sigma", 2.5),), "var(y_t)"),
                   "beta": _FLAT,
                   "r_g": DefaultPrior("LKJ", (("eta", 1.0),), text="LKJ(1): uniform on "
                                       "[-1, 1]"),
                   "r_e": DefaultPrior("LKJ", (("eta", 1.0),), text="LKJ(1): uniform on "
                                       "[-1, 1]")},
    "threshold": {"h2": _UNIFORM_H2,
                  # s = 1 (probit) or 1.8 (logit, the logistic's sd): a unit-scale liability
                  "intercept": DefaultPrior("Normal", (("mu", 0.0), ("sigma", 1.0)), "s",
                                            text="Normal(0, s) (no prevalence given; s = 1 "
                                            "probit, 1.8 logit)"),
                  "beta": DefaultPrior("Normal", (("mu", 0.0), ("sigma", 1.0)), "s",
                                       text="Normal(0, s / sd(x_j)) (each covariate)")},
}


def default_prior(family: str, name: str, scale: float = 1.0) -> Prior:
    """The default :class:`Prior` of ``name`` in the model family ``family``
    (:data:`DEFAULT_PRIORS`), its scale parameter multiplied by ``scale``."""
    return DEFAULT_PRIORS[family][name].prior(scale)


def default_prior_table(family: str) -> dict[str, str]:
    """The default priors of a family as text, e.g. ``{"h2": "Beta(1, 1)", ...}`` (what the
    log prints and the posterior's attrs hold)."""
    return {k: str(v) for k, v in DEFAULT_PRIORS[family].items()
            if family == "multitrait" or k not in ("sigma_g2", "sigma_e2")}


@dataclass(frozen=True)
class Family:
    """Everything the package knows about one distribution family, in one record.

    Attributes
    ----------
    pymc : str
        PyMC class name (``"Jeffreys"`` is ours: p(x) proportional to 1/x).
    params, defaults
        Keyword parameters (PyMC's names) and the defaults filled in when omitted.
    support : {"real", "positive", "unit"}
    logpdf : callable (x, params) -> log density, numpy (improper families unnormalised)
    ppf : callable (u, params) -> quantile, or None (improper, or drawn otherwise)
    code : int or None
        The family's code in the compiled one-kernel log-density
        (:mod:`bayeslmm.bayes.compiled.marginal`); None where it has no compiled form.
    compiled : callable params -> (p0, p1, p2, log normalising constant), or None
        The parameters as the compiled code reads them.
    """

    pymc: str
    params: tuple[str, ...]
    defaults: dict[str, float]
    support: str
    logpdf: Callable[[np.ndarray, dict], np.ndarray]
    ppf: Callable[[np.ndarray, dict], np.ndarray] | None = None
    code: int | None = None
    compiled: Callable[[dict], tuple[float, float, float, float]] | None = None


def _half_t_logpdf(x, p):
    return np.where(x >= 0, np.log(2) + stats.t.logpdf(x, p["nu"], 0, p["sigma"]), -np.inf)


def _gamma_const(p):
    a, b = p["alpha"], p["beta"]
    return a, b, 0.0, a * np.log(b) - special.gammaln(a)


def _uniform_compiled(p):
    lo, hi = p["lower"], p["upper"]
    return lo, hi, 0.0, -np.log(hi - lo)


# Parameter names follow PyMC so that keyword arguments read the same in both places.
FAMILIES: dict[str, Family] = {
    "Normal": Family("Normal", ("mu", "sigma"), {"mu": 0.0, "sigma": 1.0}, "real",
                     lambda x, p: stats.norm.logpdf(x, p["mu"], p["sigma"]),
                     lambda u, p: stats.norm.ppf(u, p["mu"], p["sigma"])),
    "StudentT": Family("StudentT", ("nu", "mu", "sigma"), {"mu": 0.0, "sigma": 1.0}, "real",
                       lambda x, p: stats.t.logpdf(x, p["nu"], p["mu"], p["sigma"]),
                       lambda u, p: stats.t.ppf(u, p["nu"], p["mu"], p["sigma"])),
    "Cauchy": Family("Cauchy", ("alpha", "beta"), {"alpha": 0.0, "beta": 1.0}, "real",
                     lambda x, p: stats.cauchy.logpdf(x, p["alpha"], p["beta"]),
                     lambda u, p: stats.cauchy.ppf(u, p["alpha"], p["beta"])),
    "Flat": Family("Flat", (), {}, "real", lambda x, p: np.zeros_like(x)),
    "HalfNormal": Family(
        "HalfNormal", ("sigma",), {"sigma": 1.0}, "positive",
        lambda x, p: stats.halfnorm.logpdf(x, scale=p["sigma"]),
        lambda u, p: stats.halfnorm.ppf(u, scale=p["sigma"]), 1,
        lambda p: (p["sigma"], 0.0, 0.0, np.log(2.0) - 0.5 * LOG2PI - np.log(p["sigma"]))),
    "HalfStudentT": Family(
        "HalfStudentT", ("nu", "sigma"), {"sigma": 1.0}, "positive", _half_t_logpdf, None, 2,
        lambda p: (p["nu"], p["sigma"], 0.0,
                   np.log(2.0) + special.gammaln((p["nu"] + 1) / 2)
                   - special.gammaln(p["nu"] / 2) - 0.5 * np.log(p["nu"] * np.pi)
                   - np.log(p["sigma"]))),
    "HalfCauchy": Family(
        "HalfCauchy", ("beta",), {"beta": 1.0}, "positive",
        lambda x, p: stats.halfcauchy.logpdf(x, scale=p["beta"]),
        lambda u, p: stats.halfcauchy.ppf(u, scale=p["beta"]), 3,
        lambda p: (p["beta"], 0.0, 0.0, np.log(2.0) - np.log(np.pi) - np.log(p["beta"]))),
    "InverseGamma": Family(
        "InverseGamma", ("alpha", "beta"), {"beta": 1.0}, "positive",
        lambda x, p: stats.invgamma.logpdf(x, p["alpha"], scale=p["beta"]),
        lambda u, p: stats.invgamma.ppf(u, p["alpha"], scale=p["beta"]), 4, _gamma_const),
    "Exponential": Family(
        "Exponential", ("lam",), {"lam": 1.0}, "positive",
        lambda x, p: stats.expon.logpdf(x, scale=1.0 / p["lam"]),
        lambda u, p: stats.expon.ppf(u, scale=1.0 / p["lam"]), 5,
        lambda p: (p["lam"], 0.0, 0.0, np.log(p["lam"]))),
    "Gamma": Family(
        "Gamma", ("alpha", "beta"), {}, "positive",
        lambda x, p: stats.gamma.logpdf(x, p["alpha"], scale=1.0 / p["beta"]),
        lambda u, p: stats.gamma.ppf(u, p["alpha"], scale=1.0 / p["beta"]), 6, _gamma_const),
    "LogNormal": Family(
        "LogNormal", ("mu", "sigma"), {"mu": 0.0, "sigma": 1.0}, "positive",
        lambda x, p: stats.lognorm.logpdf(x, p["sigma"], scale=np.exp(p["mu"])),
        lambda u, p: stats.lognorm.ppf(u, p["sigma"], scale=np.exp(p["mu"])), 7,
        lambda p: (p["mu"], p["sigma"], 0.0, -0.5 * LOG2PI - np.log(p["sigma"]))),
    "HalfFlat": Family("HalfFlat", (), {}, "positive",
                       lambda x, p: np.where(x > 0, 0.0, -np.inf), None, 8,
                       lambda p: (0.0, 0.0, 0.0, 0.0)),
    # p(x) proportional to 1/x: the scale-invariant (Jeffreys) prior of a variance.
    "Jeffreys": Family("Jeffreys", (), {}, "positive",
                       lambda x, p: np.where(x > 0, -np.log(x), -np.inf), None, 9,
                       lambda p: (0.0, 0.0, 0.0, 0.0)),
    "Beta": Family(
        "Beta", ("alpha", "beta"), {}, "unit",
        lambda x, p: stats.beta.logpdf(x, p["alpha"], p["beta"]),
        lambda u, p: special.betaincinv(p["alpha"], p["beta"], u), 20,
        lambda p: (p["alpha"], p["beta"], 0.0, -special.betaln(p["alpha"], p["beta"]))),
    "Uniform": Family(
        "Uniform", ("lower", "upper"), {"lower": 0.0, "upper": 1.0}, "unit",
        lambda x, p: stats.uniform.logpdf(x, p["lower"], p["upper"] - p["lower"]),
        lambda u, p: p["lower"] + u * (p["upper"] - p["lower"]), 21, _uniform_compiled),
}
_LOWER = {k.lower(): k for k in FAMILIES}
# Which supports make sense for which parameter: a variance must be positive, h2 in (0, 1).
_SUPPORT = {"beta": ("real",), "sigma_g2": ("positive",), "sigma_e2": ("positive",),
            "Vp": ("positive",), "h2": ("unit",)}


@dataclass(frozen=True)
class Prior:
    """One parsed prior: a family and its keyword parameters, or a user's PyMC object.

    Attributes
    ----------
    family : str
        Canonical family name (a key of :data:`FAMILIES`) or ``"custom"``.
    params : dict
        Keyword parameters (PyMC names), defaults filled in.
    custom : object
        The unnamed PyMC distribution or callable when ``family == "custom"``.
    """

    family: str
    params: dict[str, float] = field(default_factory=dict)
    custom: Any = None

    def __str__(self) -> str:
        if self.family == "custom":
            return f"custom({self.custom!r})"
        inner = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"{self.family}({inner})"

    @property
    def proper(self) -> bool:
        return self.family not in ("Flat", "HalfFlat", "Jeffreys")

    # ------------------------------------------------------------------ PyMC
    def dist(self, shape=None):
        """An unnamed PyMC distribution (for prior draws); improper families cannot be drawn."""
        import pymc as pm

        if self.family == "custom":
            if callable(self.custom) and not hasattr(self.custom, "owner"):
                raise InputError("a callable prior cannot be drawn from outside a model; pass "
                                 "an unnamed distribution such as pm.HalfNormal.dist(1.0)")
            return self.custom
        if not self.proper:
            raise InputError(f"{self} is improper and cannot be sampled from")
        cls = getattr(pm, FAMILIES[self.family].pymc)
        return cls.dist(**self.params, shape=shape)

    def create(self, name: str, *, dims=None, shape=None):
        """Register the prior as a free variable ``name`` of the current PyMC model."""
        import pymc as pm
        import pytensor.tensor as pt

        if self.family == "custom":
            if hasattr(self.custom, "owner"):
                from pymc.distributions.shape_utils import change_dist_size

                rv = self.custom
                if shape is not None and rv.ndim == 0:
                    rv = change_dist_size(rv, shape)
                return pm.modelcontext(None).register_rv(rv.clone() if rv.owner is None else
                                                         rv.owner.clone().default_output(),
                                                         name, dims=dims)
            return self.custom(name, dims=dims, shape=shape)
        if self.family == "Jeffreys":
            # log p = -log x with the log transform: flat on log x, exactly scale invariant.
            return pm.CustomDist(
                name, logp=lambda value: -pt.log(value),
                support_point=lambda rv, size: pt.ones(size if size is not None else ()),
                transform=pm.distributions.transforms.log, dims=dims, shape=shape)
        cls = getattr(pm, FAMILIES[self.family].pymc)
        return cls(name, **self.params, dims=dims, shape=shape)

    # ------------------------------------------------------------------ numpy
    def logpdf(self, x: np.ndarray) -> np.ndarray:
        """Log density at x (numpy; used by the quadrature posterior, notes eq. 46).

        Improper priors return their unnormalised log density (0 or -log x).
        """
        x = np.asarray(x, dtype=np.float64)
        if self.family == "custom":
            import pymc as pm

            return np.asarray(pm.logp(self.dist(), x).eval())
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(FAMILIES[self.family].logpdf(x, self.params), dtype=np.float64)

    def rvs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n independent prior draws (numpy)."""
        if self.family == "custom":
            import pymc as pm

            return np.asarray(pm.draw(self.dist(), draws=n,
                                      random_seed=int(rng.integers(2**31))))
        if not self.proper:
            raise InputError(f"{self} is improper: it has no draws, so the h2 prior it implies "
                             "is undefined; choose a proper prior to look at it")
        p = self.params
        f = self.family
        if f == "HalfStudentT":
            return np.abs(stats.t.rvs(p["nu"], 0, p["sigma"], size=n, random_state=rng))
        u = rng.uniform(size=n)
        return self._ppf(u)

    def log_rvs(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of log x, exact even where x itself over/underflows (InverseGamma(0.001,
        0.001) puts mass at 10^-300 and beyond)."""
        if self.family in ("InverseGamma", "Gamma"):
            a, b = self.params["alpha"], self.params["beta"]
            # log Gamma(a) = log Gamma(a + 1) + log(U) / a (Marsaglia-Tsang boost for a < 1).
            lg = np.log(rng.gamma(a + 1.0, size=n)) + np.log(rng.uniform(size=n)) / a
            return np.log(b) - lg if self.family == "InverseGamma" else lg - np.log(b)
        with np.errstate(divide="ignore"):
            return np.log(self.rvs(n, rng))

    def _ppf(self, u):
        return np.asarray(FAMILIES[self.family].ppf(u, self.params), dtype=np.float64)


# ---------------------------------------------------------------------- parsing
def _number(node: ast.expr, text: str) -> float:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _number(node.operand, text)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return float(node.value)
    raise InputError(f"prior {text!r}: arguments must be plain numbers, got "
                     f"{ast.unparse(node)!r}")


def parse_prior(text: str) -> Prior:
    """Parse ``"Name(number, ..., key=number)"`` into a :class:`Prior`, without evaluating it.

    Examples
    --------
    >>> parse_prior("Beta(1, 1)")
    Prior(family='Beta', params={'alpha': 1.0, 'beta': 1.0}, custom=None)
    >>> str(parse_prior("halfnormal(sigma=2)"))
    'HalfNormal(sigma=2)'
    """
    if not isinstance(text, str):
        raise InputError(f"a prior must be a string such as 'HalfNormal(2)', got {text!r}")
    src = text.strip()
    if src and "(" not in src:
        src += "()"  # "Flat" is "Flat()"
    try:
        tree = ast.parse(src, mode="eval").body
    except SyntaxError:
        raise InputError(f"cannot parse prior {text!r}: expected Name(number, ...), e.g. "
                         "'HalfNormal(2)' or 'Beta(alpha=1, beta=1)'") from None
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise InputError(f"cannot parse prior {text!r}: expected Name(number, ...)")
    fam_name = _LOWER.get(tree.func.id.lower())
    if fam_name is None:
        raise InputError(f"unknown prior family {tree.func.id!r} in {text!r}; known: "
                         f"{', '.join(FAMILIES)}")
    fam = FAMILIES[fam_name]
    args = [_number(a, text) for a in tree.args]
    if len(args) > len(fam.params):
        raise InputError(f"prior {text!r}: {fam_name} takes at most {len(fam.params)} "
                         f"argument(s) ({', '.join(fam.params) or 'none'})")
    params = dict(fam.defaults)
    params.update(zip(fam.params, args, strict=False))
    seen: set[str] = set()
    for kw in tree.keywords:
        key = kw.arg
        if key is None or key in seen:
            raise InputError(f"prior {text!r}: bad or repeated keyword {key!r}")
        seen.add(key)
        if key == "scale" and fam_name == "Exponential":  # Exponential(scale=s) = lam 1/s
            params["lam"] = 1.0 / _number(kw.value, text)
            continue
        if key not in fam.params:
            raise InputError(f"prior {text!r}: {fam_name} has no parameter {key!r}; its "
                             f"parameters are {', '.join(fam.params) or 'none'}")
        if fam.params.index(key) < len(args):
            raise InputError(f"prior {text!r}: {key!r} given twice")
        params[key] = _number(kw.value, text)
    missing = [p for p in fam.params if p not in params]
    if missing:
        raise InputError(f"prior {text!r}: missing {', '.join(missing)}")
    for key, v in params.items():
        if key in ("sigma", "beta", "alpha", "lam", "nu") and not (
                fam_name == "Cauchy" and key == "alpha") and v <= 0:
            raise InputError(f"prior {text!r}: {key} must be positive, got {v:g}")
    if fam_name == "Uniform" and params["upper"] <= params["lower"]:
        raise InputError(f"prior {text!r}: upper must exceed lower")
    # Keep the order of the family's parameter list (stable __str__).
    return Prior(fam_name, {k: params[k] for k in fam.params})


def _as_prior(name: str, value) -> Prior:
    if isinstance(value, Prior):
        return value
    if isinstance(value, str):
        return parse_prior(value)
    if hasattr(value, "owner") or callable(value):
        return Prior("custom", {}, value)
    raise InputError(f"prior for {name!r} must be a string like 'HalfNormal(2)', a Prior, an "
                     f"unnamed PyMC distribution or a callable; got {type(value).__name__}")


def parse_priors(spec: Mapping[str, Any] | None, *, allowed=ALL_NAMES) -> dict[str, Prior]:
    """Validate and parse a prior specification (no defaults filled in).

    Parameters
    ----------
    spec : mapping or None
        Parameter name -> string, :class:`Prior`, unnamed PyMC distribution or callable.
    allowed : sequence of str
        Parameter names the model has.

    Raises
    ------
    InputError
        On an unknown parameter name, a bad string, a family whose support does not match
        the parameter (e.g. ``Normal`` on a variance) or mixing ``h2``/``Vp`` with
        ``sigma_g2``/``sigma_e2``.
    """
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise InputError(f"priors must be a dict of parameter name -> prior, got "
                         f"{type(spec).__name__}")
    out: dict[str, Prior] = {}
    for name, value in spec.items():
        if name not in allowed:
            raise InputError(f"unknown parameter {name!r} in priors; this model has "
                             f"{', '.join(allowed)}")
        prior = _as_prior(name, value)
        if prior.family != "custom":
            sup = FAMILIES[prior.family].support
            if sup not in _SUPPORT[name]:
                raise InputError(f"prior {prior} for {name!r} has {sup} support; {name!r} needs "
                                 f"a {' or '.join(_SUPPORT[name])} distribution")
        out[name] = prior
    if any(n in out for n in H2_NAMES) and any(n in out for n in VARIANCE_NAMES):
        raise InputError("priors mix the (h2, Vp) and (sigma_g2, sigma_e2) parameterisations; "
                         "give priors for one pair only")
    return out


@dataclass(frozen=True)
class ResolvedPriors:
    """Priors with defaults filled in; what a model builder uses."""

    parameterisation: str  # "h2" (h2, Vp) or "variances" (sigma_g2, sigma_e2) or "residual"
    priors: dict[str, Prior]
    beta_mu: np.ndarray
    beta_sigma: np.ndarray

    def __getitem__(self, key: str) -> Prior:
        return self.priors[key]

    def describe(self, covariates=None) -> dict[str, str]:
        """The priors as used: the default beta prior resolved per covariate (bambi-like,
        scaled to the data), not the placeholder it is stored under."""
        out = {k: str(v) for k, v in self.priors.items()}
        if self.beta_mu.size:
            names = list(covariates) if covariates is not None else [
                f"beta[{j}]" for j in range(self.beta_mu.size)]
            out["beta"] = "; ".join(
                f"{n}: Normal(mu={m:.4g}, sigma={s:.4g})"
                for n, m, s in zip(names, self.beta_mu, self.beta_sigma, strict=True))
        return out


def default_priors(spec, y: np.ndarray, X: np.ndarray | None, *, kind: str = "lmm"
                   ) -> ResolvedPriors:
    """Fill in the defaults of :data:`DEFAULT_PRIORS` (``Vp`` scaled to var(y)).

    ``kind`` is ``"lmm"`` (variance components), ``"lmm-variances"`` (force the
    (sigma_g2, sigma_e2) parameterisation, needed with several kernels) or ``"linear"``
    (the fixed-effects model: ``sigma_e2`` and ``beta`` only).
    """
    allowed = ("beta", "sigma_e2") if kind == "linear" else ALL_NAMES
    priors = parse_priors(spec, allowed=allowed)
    vy = float(np.var(y, ddof=1))
    var_default = default_prior("linear", "Vp", vy)
    if kind == "linear":
        param = "residual"
        priors.setdefault("sigma_e2", var_default)
    elif kind == "lmm-variances" or any(n in priors for n in VARIANCE_NAMES):
        if any(n in priors for n in H2_NAMES):
            raise InputError("with several kernels give priors on sigma_g2 and sigma_e2, not "
                             "h2 / Vp")
        param = "variances"
        priors.setdefault("sigma_g2", var_default)
        priors.setdefault("sigma_e2", var_default)
    else:
        param = "h2"
        priors.setdefault("h2", default_prior("linear", "h2"))
        priors.setdefault("Vp", var_default)
    priors.setdefault("beta", default_prior("linear", "beta"))
    mu = sigma = np.zeros(0)  # no per-coefficient default: beta's prior is one for all
    order = [n for n in ALL_NAMES if n in priors]
    return ResolvedPriors(param, {n: priors[n] for n in order}, mu, sigma)


# ---------------------------------------------------------------------- implied h2 prior
def implied_h2_prior(priors, *, y=None, n: int = 4000, seed=None) -> np.ndarray:
    """Draws of the prior on h2 = sigma_g2 / (sigma_g2 + sigma_e2) that a spec implies.

    Independent priors on the two variances are not flat on h2 (e.g. two equal
    InverseGamma(0.001, 0.001) priors pile h2 up at 0 and 1); this shows what was chosen.

    Parameters
    ----------
    priors : mapping
        A prior specification (see the module docstring); missing entries get defaults,
        scaled to ``y`` when given (otherwise var(y) = 1).
    y : array_like, optional
        Phenotype, only to scale the default priors.
    n : int
        Number of draws.
    seed : int or numpy.random.Generator, optional

    Returns
    -------
    ndarray, shape (n,)
    """
    rng = np.random.default_rng(seed)
    yy = np.asarray(y, dtype=np.float64) if y is not None else np.array([-1.0, 1.0])
    if y is None:
        yy = yy / np.std(yy, ddof=1)
    res = default_priors(priors, yy, None)
    if res.parameterisation == "h2":
        return np.clip(res["h2"].rvs(n, rng), 0.0, 1.0)
    # h2 = 1 / (1 + sigma_e2 / sigma_g2) = expit(log sigma_g2 - log sigma_e2), in logs so that
    # vague priors whose draws overflow still give the right h2.
    return special.expit(res["sigma_g2"].log_rvs(n, rng) - res["sigma_e2"].log_rvs(n, rng))


def plot_implied_h2_prior(priors, *, y=None, n: int = 20000, seed=None, ax=None,
                          bins: int = 50, label: str | None = None):
    """Histogram of the h2 prior implied by ``priors`` (see :func:`implied_h2_prior`).

    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    draws = implied_h2_prior(priors, y=y, n=n, seed=seed)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3))
    ax.hist(draws[np.isfinite(draws)], bins=bins, range=(0, 1), density=True, alpha=0.6,
            label=label or ", ".join(f"{k}={v}" for k, v in (priors or {}).items()) or
            "default priors")
    ax.set_xlabel(r"$h^2$")
    ax.set_ylabel("prior density")
    ax.set_xlim(0, 1)
    ax.legend(fontsize="small")
    return ax


def parse_assignments(specs: Sequence[str], what: str = "--prior") -> dict[str, str]:
    """``["h2=Beta(1, 1)", "Vp='HalfNormal(2)'"]`` -> ``{"h2": "Beta(1, 1)", ...}``: the
    command line's NAME=SPEC form (quotes around SPEC dropped); each SPEC is checked by
    :func:`parse_prior` when the model is built."""
    out = {}
    for s in specs:
        name, eq, spec = s.partition("=")
        if not eq or not name.strip() or not spec.strip():
            raise InputError(f"{what} expects NAME=SPEC, e.g. h2='Beta(1, 1)'; got {s!r}")
        out[name.strip()] = spec.strip().strip("'\"")
    return out


def parse_prior_sets(specs: Sequence[str]) -> dict[str, dict[str, str]]:
    """``["flat: h2=Beta(1, 1)", "IG: sigma_g2=InverseGamma(1, 1); sigma_e2=..."]`` -> prior
    sets by label (the ``sensitivity --priors 'LABEL: NAME=SPEC; ...'`` form)."""
    out: dict[str, dict[str, str]] = {}
    for s in specs:
        label, colon, rest = s.partition(":")
        if not colon or not label.strip():
            raise InputError(f"--priors expects 'LABEL: NAME=SPEC; ...', got {s!r}")
        out[label.strip()] = parse_assignments([p for p in rest.split(";") if p.strip()],
                                               "--priors")
    if not out:
        raise InputError("give at least one --priors 'LABEL: NAME=SPEC; ...'")
    return out
