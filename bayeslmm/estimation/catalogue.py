"""The REML engines from genotypes (``--engine``) and the options each reads, declared without
numpy so that the command line can list them quickly. The engines themselves are in
:mod:`bayeslmm.estimation.engines`."""

from __future__ import annotations

from bayeslmm.registry import Engine, register_engine

__all__ = ["ENGINES"]

ENGINES = ("auto", "eigen", "lowrank", "krylov")
_PASSES = frozenset({"scheduler"})  # every engine runs its passes on dask
for _e, _what, _opts in (
        ("auto", "picks eigen, lowrank or krylov by N, P and free memory (logged)",
         {"probes", "lanczos_steps", "probe_seed", "precision"}),
        ("eigen", "the GRM from the genotypes, then its eigendecomposition (N up to ~15,000)",
         set()),
        ("lowrank", "K = ZZ'/P through the P x P matrix Z'Z, exact (P < N)", set()),
        ("krylov", "matrix-free: block Lanczos + stochastic Lanczos quadrature, any N and P",
         {"probes", "lanczos_steps", "probe_seed", "precision"})):
    register_engine(Engine(_e, _what, options=frozenset(_opts) | _PASSES))
