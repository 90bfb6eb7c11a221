"""Posterior of several variance components: a quadrature grid, importance sampling, NUTS.

With k kernels V = sum_j sigma_j K_j + sigma_e2 I cannot be diagonalised once, so every
evaluation of the density costs a Cholesky of V (N^3 / 3 flops: ~50-90 ms at N = 2,000 on
one core). The posterior is therefore computed from as few factorisations as possible:

* beta is integrated out exactly (:mod:`bayeslmm.bayes.multikernel.logp`), and so is the
  scale: along the ray sigma = sigma_e2 (e^u, 1) one Cholesky gives the density for every
  sigma_e2 (:mod:`bayeslmm.bayes.multikernel.rays`). What costs a Cholesky is the density
  of the k log variance ratios u = log(sigma_j / sigma_e2); s = log sigma_e2 and beta are
  drawn from their exact conditionals given u;
* ``method="grid"`` (the default for k <= 2; :mod:`bayeslmm.bayes.multikernel.grid`):
  the mode of p(u | y) from stencil quadratics (~15-20 Choleskys), log p(u | y) and the ray
  pieces tabulated on a grid in the Laplace-whitened frame (49-81 for a near-Gaussian
  posterior, more where it is skewed), a cubic-spline interpolant, iid draws from it
  (ESS = number of draws). The interpolant is checked against exact evaluations at
  ``n_check`` random posterior draws (attrs ``grid_check_logp``, ``grid_check_loglik``,
  ``grid_check_beta``); when a check fails, or the grid cannot enclose the posterior, a
  :class:`~bayeslmm.errors.SamplingWarning` says so and importance sampling runs instead;
* ``method="importance"`` (the default for k >= 3): proposals for u from a Student-t around
  the mode (a pilot from the stencil curvature, then matched to the pilot's weighted
  moments, 15% from a 3x wider one: defensive importance sampling), each weighted by the
  exact p(u | y) / q(u); Pareto-smoothed weights (PSIS, ``arviz_stats``) until their
  effective sample size reaches ``min_ess``; draws resampled from the proposals, with s and
  beta drawn exactly from each proposal's own factorisation;
* ``method="nuts"``, and the fallback when PSIS k-hat >= 0.7: NUTS (nutpie) on t = log
  sigma with the exact gradient (one inverse of V per step: slow).

The diagnostics (method, factorisations spent, checks or k-hat and importance ESS) are in
``posterior.attrs``; the grid (or the proposals and their smoothed log weights) in the
group ``grid`` (or ``importance``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import xarray as xr
from scipy import optimize, stats

from bayeslmm.bayes.multikernel.grid import (
    CHECK_TOL,
    SPACING,
    Mode,
    build_grid,
    check_grid,
    interpolate_rays,
    sample_grid,
)
from bayeslmm.bayes.multikernel.grid import find_mode as find_ratio_mode
from bayeslmm.bayes.multikernel.logp import MultiKernelDensity
from bayeslmm.bayes.multikernel.rays import (
    Rays,
    draw_scale_and_beta,
    log_marginal,
    loglik_at,
    rays_at,
)
from bayeslmm.data import check_seed
from bayeslmm.errors import InputError, SamplingWarning
from bayeslmm.progress import progress_bar

__all__ = ["METHODS", "PARETO_K_MAX", "find_mode", "sample_multikernel"]

METHODS = ("auto", "grid", "importance", "nuts")
PARETO_K_MAX = 0.7  # PSIS reliability threshold (Vehtari et al., "Pareto smoothed IS")
PROPOSAL_DF = 7.0
PROPOSAL_INFLATION = 1.2  # widen the moment-matched proposal a little: tails matter more
PILOT = 400
DEFENSIVE_SHARE = 0.15  # of the proposals drawn from a 3x wider Student-t
DEFENSIVE_SCALE = 3.0
BATCH = 250
N_CHECK = 8  # exact evaluations that check the grid's interpolant


def find_mode(density: MultiKernelDensity, t0: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode of t = log(sigma) and the inverse negative Hessian there.

    Returns
    -------
    mode : ndarray (k + 1,)
    cov : ndarray (k + 1, k + 1)
        Inverse of minus the Hessian (central differences of the exact gradient).
    """
    k1 = density.k + 1
    if t0 is None:
        t0 = np.full(k1, np.log(float(np.var(density.y)) / k1))

    def neg(t):
        lp, g = density.logp_grad(t)
        if not np.isfinite(lp):
            return 1e300, np.zeros_like(t)
        return -lp, -g

    res = optimize.minimize(neg, t0, jac=True, method="L-BFGS-B",
                            bounds=[(-40.0, 40.0)] * k1)
    mode = res.x
    h = 1e-4
    H = np.empty((k1, k1))
    for i in range(k1):
        e = np.zeros(k1)
        e[i] = h
        H[i] = (density.logp_grad(mode + e)[1] - density.logp_grad(mode - e)[1]) / (2 * h)
    H = 0.5 * (H + H.T)
    try:
        cov = np.linalg.inv(-H)
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = np.full((k1, k1), np.nan)
    return mode, cov


def _psis(logw: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Smoothed normalised log weights, Pareto k-hat and the weights' ESS."""
    from arviz_stats.base import array_stats

    # arviz_stats' psislw takes log *ratios to be inverted* (-log w, as -log-likelihood in
    # LOO) and returns smoothed log weights: hence the minus sign.
    lw, khat = array_stats.psislw(-(logw - np.max(logw)))
    lw = np.asarray(lw, dtype=np.float64)
    lw -= np.logaddexp.reduce(lw)
    ess = float(1.0 / np.sum(np.exp(2 * lw)))
    return lw, float(khat), ess


class _Defensive:
    """Student-t proposal mixed with a wider one (Hesterberg's defensive importance
    sampling): the weights are then bounded by p / (share * q_wide), so a posterior with a
    longer tail than the main proposal (a component near zero) cannot blow them up."""

    def __init__(self, loc, shape, share: float = DEFENSIVE_SHARE):
        self.main = stats.multivariate_t(loc, shape, df=PROPOSAL_DF)
        self.wide = stats.multivariate_t(loc, shape * DEFENSIVE_SCALE**2, df=PROPOSAL_DF)
        self.share = share

    def rvs(self, size, random_state):
        a = self.main.rvs(size=size, random_state=random_state).reshape(size, -1)
        b = self.wide.rvs(size=size, random_state=random_state).reshape(size, -1)
        pick = random_state.uniform(size=size) < self.share
        return np.where(pick[:, None], b, a)

    def logpdf(self, T):
        return np.logaddexp(np.log1p(-self.share) + self.main.logpdf(T).reshape(-1),
                            np.log(self.share) + self.wide.logpdf(T).reshape(-1))


class _Bar:
    """A progress bar over factorisations whose total grows as the work is discovered."""

    def __init__(self, enabled: bool, total: int):
        self.bar = None
        if enabled:
            self.bar = progress_bar(total=total, desc="several-kernel posterior",
                                    unit="Cholesky", leave=False)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            if self.bar.n + n > self.bar.total:
                self.bar.total = self.bar.n + n
            self.bar.update(n)

    def grow(self, n: int) -> None:
        if self.bar is not None:
            self.bar.total = self.bar.n + n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _weighted(density, q, n, rng, progress):
    """n proposals from q with their exact log densities, ray pieces and log weights."""
    U = q.rvs(size=n, random_state=rng).reshape(n, -1)
    rays = rays_at(density, U)
    progress(n)
    lps = log_marginal(density, rays)
    logw = lps - q.logpdf(U).reshape(-1)
    logw[~np.isfinite(logw)] = -np.inf
    return rays, lps, logw


def _importance(density, mode: Mode, rng, min_ess, max_proposals, progress):
    """Adaptive importance sampling of u: a pilot from the stencil's Laplace approximation,
    then batches from a Student-t matched to the pilot's weighted moments until the PSIS
    ESS reaches min_ess. The pilot only shapes the proposal; its draws are not used."""
    progress.grow(PILOT + max_proposals)
    rays, _, logw = _weighted(density, _Defensive(mode.u, mode.cov), PILOT, rng, progress)
    lw, _, ess = _psis(logw)
    loc, shape = mode.u, mode.cov
    if ess >= 20:
        # log variance ratios are skewed (a long tail towards a component's zero): the
        # weighted moments capture that, the curvature at the mode does not.
        w = np.exp(lw)
        m = w @ rays.u
        C = (rays.u - m).T @ ((rays.u - m) * w[:, None])
        try:
            np.linalg.cholesky(C)
            loc, shape = m, C * PROPOSAL_INFLATION
        except np.linalg.LinAlgError:
            pass
    q = _Defensive(loc, shape)
    parts: list = []
    n = 0
    while n < max_proposals:
        b = min(BATCH, max_proposals - n)
        parts.append(_weighted(density, q, b, rng, progress))
        n += b
        logw = np.concatenate([p[2] for p in parts])
        lw, khat, ess = _psis(logw)
        if ess >= min_ess:
            break
    rays = Rays.concat([p[0] for p in parts])
    lps = np.concatenate([p[1] for p in parts])
    return rays, lps, lw, khat, ess


def _t_of(s: np.ndarray, U: np.ndarray) -> np.ndarray:
    """t = log(sigma_1..k, sigma_e2) from s = log sigma_e2 and u = log(sigma_j / sigma_e2)."""
    return np.column_stack([U + s[:, None], s])


def _dataset(density, T, beta, chains, draws) -> xr.Dataset:
    k = density.k
    s = np.exp(T)
    sg, se = s[:, :k], s[:, k]
    Vp = s.sum(axis=1)
    shape = (chains, draws)
    dims2 = ("chain", "draw")
    return xr.Dataset(
        {"sigma_g2": (dims2 + ("component",), sg.reshape(shape + (k,))),
         "sigma_e2": (dims2, se.reshape(shape)),
         "Vp": (dims2, Vp.reshape(shape)),
         "h2": (dims2 + ("component",), (sg / Vp[:, None]).reshape(shape + (k,))),
         "h2_total": (dims2, (sg.sum(axis=1) / Vp).reshape(shape)),
         "beta": (dims2 + ("covariate",), beta.reshape(shape + (density.M,)))},
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                "component": list(density.components), "covariate": list(density.covariates)})


def _tree(density, T, beta, ll, chains, draws, extra: dict) -> xr.DataTree:
    post = _dataset(density, T, beta, chains, draws)
    coords = {"chain": post.chain, "draw": post.draw}
    groups = {
        "posterior": post,
        # Independent draws: no trajectories, so no divergences.
        "sample_stats": xr.Dataset(
            {"diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool))},
            coords=coords),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw"), ll.reshape(chains, draws))},
                                     coords=coords)}
    groups.update(extra)
    return xr.DataTree.from_dict(groups)


def _grid_method(density, mode, S, chains, draws, rng, n_check, progress):
    """The grid posterior (module docstring), or (None, reason) when it cannot be trusted.

    A failed check is met once by halving the spacing (the coarse nodes are reused) before
    giving up."""
    known: dict = {}
    attrs: dict = {}
    for spacing in (SPACING, SPACING / 2):
        fit = build_grid(density, mode, spacing=spacing, progress=progress, known=known)
        attrs.update(n_grid_nodes=fit.n_nodes, grid_shape=[a.size for a in fit.axes],
                     grid_spacing=spacing)
        if not np.all(np.isfinite(fit.logp)):
            return None, "V is not positive definite at some grid nodes", attrs
        if not fit.complete:
            return None, "the grid did not enclose the posterior (a tail too long)", attrs
        Z, violations = sample_grid(fit, S, rng)
        m = min(n_check, S)
        progress.grow(m)
        chk = check_grid(density, fit, Z[:m], rng)
        progress(m)
        attrs.update(grid_check_logp=chk["logp"], grid_check_loglik=chk["loglik"],
                     grid_check_beta=chk["beta"], grid_check_points=chk["n_check"],
                     grid_envelope_violations=violations)
        bad = [f"{name} off by {chk[name]:.3g} > {tol}" for name, tol in CHECK_TOL.items()
               if not chk[name] <= tol]
        if not bad:
            break
    else:
        return None, "the grid's interpolant disagrees with exact evaluations (" + \
            "; ".join(bad) + ")", attrs
    rays = interpolate_rays(fit, density, Z)
    s, beta = draw_scale_and_beta(density, rays, rng)
    ll = loglik_at(density, rays, s, beta)
    grid = xr.Dataset(
        {"log_ratio": (("node", "component"), fit.nodes_u()),
         "log_density": (("node",), fit.logp.ravel())},
        coords={"component": list(density.components)})
    tree = _tree(density, _t_of(s, rays.u), beta, ll, chains, draws, {"grid": grid})
    return tree, None, attrs


def _importance_method(density, mode, S, chains, draws, rng, min_ess, max_proposals,
                       progress):
    rays, lps, lw, khat, ess = _importance(density, mode, rng, min_ess, max_proposals,
                                           progress)
    attrs = {"pareto_k": khat, "ess_importance": ess, "n_proposals": len(rays)}
    if not khat < PARETO_K_MAX:
        return None, f"PSIS k-hat = {khat:.2f} >= 0.7", attrs
    w = np.exp(lw)
    idx = rng.choice(w.size, size=S, replace=True, p=w / w.sum())
    chosen = rays.take(idx)
    s, beta = draw_scale_and_beta(density, chosen, rng)  # exact pieces of each proposal
    ll = loglik_at(density, chosen, s, beta)
    imp = xr.Dataset(
        {"log_ratio": (("proposal", "component"), rays.u),
         "log_density": (("proposal",), lps),
         "log_weight": (("proposal",), lw)},
        coords={"component": list(density.components)})
    tree = _tree(density, _t_of(s, chosen.u), beta, ll, chains, draws, {"importance": imp})
    tree["sample_stats"]["proposal"] = (("chain", "draw"), idx.reshape(chains, draws))
    return tree, None, attrs


def _draw_beta(mus, Ls, idx, rng, M) -> np.ndarray:
    """beta ~ N(mu, A^-1) = mu + L^-T z for the proposals idx (exact conditional draws)."""
    from scipy.linalg import solve_triangular

    out = np.empty((idx.size, M))
    z = rng.standard_normal((idx.size, M))
    for i, j in enumerate(idx):
        out[i] = mus[j] + solve_triangular(Ls[j], z[i], lower=True, trans="T")
    return out


def _nuts(density, draws, tune, chains, seed, progressbar, mode, target_accept):
    """NUTS (nutpie) on t with the exact gradient; beta drawn from its conditional."""
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    k, M = density.k, density.M

    def make_logp():
        def logp(x, **_):
            lp, g = density.logp_grad(x)
            if not np.isfinite(lp):
                raise FloatingPointError("V not positive definite")
            return lp, g
        return logp

    def make_expand(seed1, seed2, chain):
        rng = np.random.default_rng([seed1, seed2, chain])

        def expand(x, **_):
            _, mu, L, _ = density.logp_beta(x)
            s = np.exp(x)
            beta = _draw_beta([mu], [L], np.zeros(1, dtype=int), rng, M)[0]
            Vp = float(s.sum())
            # nutpie wants ndarrays, also for scalars (shape ()).
            return {"sigma_g2": s[:k].copy(), "sigma_e2": np.array(s[k]), "Vp": np.array(Vp),
                    "h2": s[:k] / Vp, "h2_total": np.array(s[:k].sum() / Vp), "beta": beta}
        return expand

    start = mode if mode is not None and np.all(np.isfinite(mode)) else np.full(
        k + 1, np.log(float(np.var(density.y)) / (k + 1)))

    def init(seed_):
        return start + np.random.default_rng(seed_).uniform(-0.5, 0.5, k + 1)

    names = ["sigma_g2", "sigma_e2", "Vp", "h2", "h2_total", "beta"]
    shapes = [(k,), (), (), (k,), (), (M,)]
    compiled = from_pyfunc(
        k + 1, make_logp, make_expand, [np.dtype("float64")] * len(names), shapes, names,
        coords={"component": list(density.components), "covariate": list(density.covariates)},
        dims={"sigma_g2": ("component",), "h2": ("component",), "beta": ("covariate",)},
        make_initial_point_fn=init)
    kw = {} if target_accept is None else {"target_accept": target_accept}
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                          progress_bar=progressbar, cores=1, **kw)
    return idata


def sample_multikernel(density: MultiKernelDensity, draws: int = 1000, chains: int = 4,
                       seed: int | np.random.Generator | None = None, *,
                       method: str = "auto", tune: int = 1000, min_ess: float | None = None,
                       max_proposals: int | None = None, progressbar: bool = True,
                       target_accept: float | None = None, n_check: int = N_CHECK
                       ) -> xr.DataTree:
    """Posterior draws of (sigma_1..k, sigma_e2, beta) for the several-kernel marginal model.

    Parameters
    ----------
    density : MultiKernelDensity
    draws, chains : int
        ``chains x draws`` draws are returned (independent draws for the grid and importance
        sampling; the chains are then only a layout).
    seed : int or Generator, optional
    method : {"auto", "grid", "importance", "nuts"}
        ``"auto"``: the grid for k <= 2 kernels, importance sampling for more; a failed
        grid check falls back to importance sampling, PSIS k-hat >= 0.7 to NUTS, each with
        a :class:`~bayeslmm.errors.SamplingWarning`. A named method raises instead of
        falling back.
    tune : int
        NUTS warm-up per chain.
    min_ess : float, optional
        Importance sampling stops when the PSIS effective sample size reaches this; default
        ``chains * draws / 4``.
    max_proposals : int, optional
        At most this many proposals (default ``4 * chains * draws``).
    target_accept : float, optional
        For NUTS.
    n_check : int
        Exact evaluations at random posterior draws that check the grid's interpolant.

    Returns
    -------
    xarray.DataTree
        ``posterior`` with ``sigma_g2`` and ``h2`` over ``component``, ``sigma_e2``, ``Vp``,
        ``h2_total``, ``beta`` over ``covariate``; ``log_likelihood`` (log N(y | X beta, V)
        per draw); ``sample_stats``; ``grid`` or ``importance``. ``posterior.attrs``:
        ``method``, ``n_cholesky`` (factorisations of V), ``mode_log_sigma``,
        ``min_ess_bulk``, ``max_rhat``, ``n_divergences``, ``wall_time_s`` and the method's
        diagnostics (``grid_check_*``, ``n_grid_nodes``; ``pareto_k``, ``ess_importance``,
        ``n_proposals``).
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(map(repr, METHODS))}, got "
                         f"{method!r}")
    if draws < 1 or chains < 1:
        raise InputError("draws and chains must be positive")
    if method == "grid" and density.k > 2:
        raise InputError(f"method='grid' is for one or two kernels, not {density.k}; use "
                         "'importance'")
    check_seed(seed)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    S = draws * chains
    min_ess = S / 4 if min_ess is None else float(min_ess)
    max_proposals = 4 * S if max_proposals is None else int(max_proposals)
    bar = _Bar(progressbar, 120 if density.k <= 2 else PILOT + max_proposals)
    count = {"n": 0}

    def progress(n: int) -> None:
        count["n"] += n
        bar(n)

    progress.grow = bar.grow
    try:
        mode = find_ratio_mode(density, progress=progress)
        attrs: dict = {}
        if np.all(np.isfinite(mode.u)):
            ray = mode.ray
            s0 = np.log(ray.q / max(density.N - density.M, 1)) if ray.ok[0] else np.zeros(1)
            attrs["mode_log_sigma"] = _t_of(s0, mode.u[None])[0].tolist()
        plan = method if method != "auto" else ("grid" if density.k <= 2 else "importance")
        tree = None
        if plan == "grid":
            if not np.all(np.isfinite(mode.cov)):
                reason = "the curvature at the mode is not negative definite"
            else:
                tree, reason, extra = _grid_method(density, mode, S, chains, draws, rng,
                                                      n_check, progress)
                attrs.update(extra)
            if tree is not None:
                attrs["method"] = "grid"
            elif method == "grid":
                raise InputError(f"the grid posterior is unreliable here ({reason}); use "
                                 "method='importance' or 'nuts'")
            else:
                warnings.warn(f"grid posterior unreliable ({reason}); sampling by importance "
                              "sampling instead", SamplingWarning, stacklevel=2)
                plan = "importance"
        if tree is None and plan == "importance":
            if not np.all(np.isfinite(mode.cov)):
                reason = "the curvature at the mode is not negative definite"
            else:
                tree, reason, extra = _importance_method(density, mode, S, chains, draws, rng,
                                                         min_ess, max_proposals, progress)
                attrs.update(extra)
            if tree is not None:
                attrs["method"] = "importance"
            elif method == "importance":
                raise InputError(f"importance sampling is unreliable here ({reason}); use "
                                 "method='nuts'")
            else:
                warnings.warn(f"importance sampling around the mode is unreliable ({reason}); "
                              "sampling with NUTS instead (slower: one inverse of V per "
                              "gradient)", SamplingWarning, stacklevel=2)
    finally:
        bar.close()
    from bayeslmm.bayes.diagnostics import check_diagnostics

    if tree is not None:
        if attrs["method"] == "grid":
            # Independent draws: their bulk ESS (~ the number of draws) and R-hat, measured
            # and reported; no warning, since R-hat of iid draws exceeds 1.01 by chance at a
            # few hundred draws per chain.
            attrs.update(check_diagnostics(tree, warn=False))
        else:
            attrs.update(n_divergences=0, max_rhat=float("nan"),
                         min_ess_bulk=float(attrs["ess_importance"]))
        attrs["n_cholesky"] = count["n"]
        tree["posterior"].attrs.update(attrs, wall_time_s=time.perf_counter() - t0)
        return tree
    if isinstance(seed, np.random.Generator) or seed is None:
        seed = int(rng.integers(2**31))
    start = np.array(attrs["mode_log_sigma"]) if "mode_log_sigma" in attrs else None
    out = _nuts(density, draws, tune, chains, seed, progressbar, start, target_accept)
    attrs.update(method="nuts", n_cholesky=count["n"], **check_diagnostics(out, warn=True))
    out["posterior"].attrs.update(attrs, wall_time_s=time.perf_counter() - t0)
    return out
