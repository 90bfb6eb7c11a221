"""REML from genotypes with the engine that fits the data: eigen, low-rank or Krylov.

* ``eigen``: the GCTA GRM (:func:`bayeslmm.genotypes.kinship.grm`) and one dense eigendecomposition,
  O(N^3) time and two N x N matrices (exact).
* ``lowrank``: P < N; Z'Z accumulated over chunks and decomposed (P x P), then the thin SVD
  decomposition of K (exact; :mod:`bayeslmm.covariance.lowrank`).
* ``krylov``: matrix-free, any N and P; block Lanczos + SLQ (:mod:`bayeslmm.estimation.krylov`),
whose
  Monte Carlo error is reported next to h2.

``auto`` picks by N, P and the free memory and logs why. The genotype passes run on dask:
the threaded scheduler, or a ``dask.distributed`` cluster when a ``client`` is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.data import prepare
from bayeslmm.errors import AlignmentError, InputError
from bayeslmm.estimation.catalogue import ENGINES
from bayeslmm.io.plink import read_plink

__all__ = ["ENGINES", "choose_engine", "reml_genotypes", "scheduler_client"]

log = logging.getLogger(__name__)

#: above this N the O(N^3) eigendecomposition is slower than a Krylov run on 2 cores
EIGEN_MAX_N = 15_000


def choose_engine(N: int, P: int, memory: int | None = None) -> tuple[str, str]:
    """The engine ``auto`` picks for N samples and P SNPs, with the reason.

    ``eigen`` while N <= ``EIGEN_MAX_N`` and three N x N float64 matrices fit in half the
    free memory; else ``lowrank`` when P < N and two N x P plus two P x P matrices fit in half
    of it; else ``krylov``.
    """
    from bayeslmm.genotypes.storage import available_memory

    mem = available_memory() if memory is None else int(memory)
    eigen_bytes = 3 * 8 * N * N
    # U (N x r, r <= P) exists twice at the peak, as dask's blocks and their concatenation,
    # next to Z'Z and its eigenvectors: at N = 50,000, P = 20,000 that is 22 GiB, and the
    # process was measured (and killed) at 24 GiB.
    low_bytes = 8 * (2 * N * P + 2 * P * P)
    if N <= EIGEN_MAX_N and eigen_bytes < mem / 2:
        return "eigen", (f"N={N} <= {EIGEN_MAX_N} and the dense eigendecomposition needs "
                         f"{eigen_bytes / 2**30:.1f} GiB of {mem / 2**30:.1f} GiB free")
    if P < N and low_bytes < mem / 2:
        return "lowrank", (f"P={P} < N={N} and Z'Z needs {low_bytes / 2**30:.1f} GiB of "
                           f"{mem / 2**30:.1f} GiB free (exact low-rank decomposition)")
    why = (f"N={N} > {EIGEN_MAX_N}" if N > EIGEN_MAX_N else
           f"{eigen_bytes / 2**30:.1f} GiB for the eigendecomposition exceeds half the free "
           f"{mem / 2**30:.1f} GiB")
    return "krylov", why + (f" and P={P} >= N" if P >= N else ", low-rank Z does not fit") \
        + ": matrix-free block Lanczos"


def _rows(ds: xr.Dataset, samples: np.ndarray, labelled: bool) -> np.ndarray:
    """Positions in ``ds`` of the phenotyped samples."""
    labels = ds["sample"].to_numpy().astype(str)
    if not labelled:
        if samples.size != labels.size:
            raise AlignmentError(f"y has {samples.size} values but the genotypes have "
                                 f"{labels.size} samples; give y with 'FID IID' labels")
        return np.arange(labels.size)
    pos = {s: i for i, s in enumerate(labels)}
    missing = [s for s in samples if s not in pos]
    if missing:
        raise AlignmentError(
            f"{len(missing)} of {samples.size} phenotyped samples are not in the genotypes; "
            f"first is {missing[0]!r}, first genotype ID is {labels[0]!r}")
    return np.fromiter((pos[s] for s in samples), dtype=np.int64, count=samples.size)


def reml_genotypes(source, y, X=None, *, engine: str = "auto", maf: float = 0.0,
                   geno: float = 1.0, client=None, threads: int | None = None,
                   n_probes: int = 30, n_steps: int = 20, seed: int = 0,
                   chunk_size: int | None = None, progress: bool | None = None,
                   memory: int | None = None, precision: str = "float32",
                   cache: bool | str | None = None, return_operator: bool = False,
                   se_method: str | None = None, resume=None):
    """REML (one GRM, notes 4.3.2) straight from a PLINK fileset, at any scale.

    Parameters
    ----------
    source : xarray.Dataset or path
        Lazy PLINK dataset (:func:`bayeslmm.io.read_plink`) or prefix; its samples define
        the allele frequencies, as for :func:`bayeslmm.genotypes.kinship.grm`.
    y : pandas.Series or array_like
        Phenotype, labelled ``"FID IID"`` (the dataset's ``sample`` coordinate) or in the
        dataset's order. Samples missing from y are left out of the model.
    X : array_like, optional
        Covariates (default an intercept), aligned with y.
    engine : {"auto", "eigen", "lowrank", "krylov"}
        See the module docstring; ``auto`` logs its choice and why.
    maf, geno : float
        PLINK's SNP filters.
    client : dask.distributed.Client, optional
        Run the genotype passes on this cluster (default: dask's threaded scheduler).
    threads : int, optional
        Threads of the threaded scheduler.
    n_probes, n_steps, seed : int
        Krylov engine: Rademacher probes, Lanczos steps (passes), probe seed.
    precision : {"float32", "float64"}
        Krylov engine: floating type of the products over the int8 genotypes (chunk sums
        in float64; :class:`bayeslmm.genotypes.operator.GenotypeOperator`).
    memory : int, optional
        Memory budget in bytes (default: the free memory): it picks the engine (``auto``)
        and where the passes read the genotypes.
    cache : {"int8", "packed", "none"} or bool, optional
        Where the passes read the genotypes (see
        :class:`~bayeslmm.genotypes.operator.GenotypeOperator`): by default the int8
        cache while it takes at most half of ``memory``, else a ``.bed``'s own 2-bit bytes.
    resume : path, optional
        Keep each completed pass over the genotypes in this folder and read back those an
        interrupted run with the same inputs completed (:mod:`bayeslmm.genotypes.passes`);
        the folder is left in place: remove it on success (``op.store.remove()``).
    return_operator : bool
        Also return the genotype operator the fit was made with (None for ``eigen``), so
        that further passes (association, BLUP) reuse its cache and its QC.
    se_method : {"ai", "observed", "expected"}, optional
        The information matrix behind the SEs (:func:`bayeslmm.reml`): by default the average
        information for ``eigen``/``lowrank`` (GCTA's) and the observed one for ``krylov``,
        the only one it has (the others need traces of P K P K); ``krylov`` refuses others.

    Returns
    -------
    VarianceComponentFit or KrylovFit
        ``eigen`` and ``lowrank`` return the ordinary fit (its ``decomposition`` feeds
        BLUP, association and the posterior); ``krylov`` a
        :class:`bayeslmm.estimation.krylov.KrylovFit`
        with the Monte Carlo error of h2, whose ``model`` feeds
        :func:`bayeslmm.bayes.quadrature_krylov.posterior_h2_krylov`. With
        ``return_operator``, the pair ``(fit, operator)``.
    """
    from bayeslmm.genotypes.operator import GenotypeOperator

    if engine not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(map(repr, ENGINES))}; got {engine!r}")
    ds = read_plink(source) if isinstance(source, str | os.PathLike) else source
    if not isinstance(ds, xr.Dataset):
        raise InputError("expected a PLINK prefix or a dataset from read_plink, got "
                         f"{type(source).__name__}")
    labelled = hasattr(y, "index") or (isinstance(y, xr.DataArray) and "sample" in y.coords)
    data = prepare(y, None, X)
    rows = _rows(ds, data.samples, labelled)
    N, P = data.N, ds.sizes["variant"]
    # The fits keep y's sample labels and covariate names (for BLUP, assoc and reports).
    y_lab = pd.Series(data.y, index=pd.Index(data.samples, name="sample"), name="y")
    X_lab = pd.DataFrame(data.X, index=y_lab.index, columns=list(data.covariates))
    if engine == "auto":
        engine, why = choose_engine(N, P, memory)
        log.info("engine 'auto' chose '%s': %s", engine, why)
    if engine == "krylov" and se_method not in (None, "observed"):
        raise InputError(f"the Krylov engine's standard errors come from the observed "
                         f"information (the curvature of its log-likelihood); se_method "
                         f"{se_method!r} needs the eigen or lowrank engine")
    fit_kw = {"se_method": se_method or "ai"}
    if engine == "eigen":
        from bayeslmm.covariance.decomposition import decompose
        from bayeslmm.estimation.reml import reml
        from bayeslmm.genotypes.kinship import grm

        K = np.asarray(grm(ds, maf=maf, geno=geno, progress=progress).K)[np.ix_(rows, rows)]
        dec = decompose(K, samples=data.samples)
        fit = reml(y_lab, dec, X_lab, **fit_kw)
        return (fit, None) if return_operator else fit
    # The low-rank tier decomposes Z'Z: float64 products (it is exact, not stochastic).
    op = GenotypeOperator(ds, maf=maf, geno=geno, samples=rows,
                          X=data.X if engine == "krylov" else None, chunk_size=chunk_size,
                          client=client, threads=threads, progress=progress,
                          precision=precision if engine == "krylov" else "float64",
                          cache=cache, memory=memory,
                          resume=resume if engine == "krylov" else None)
    try:
        if engine == "lowrank":
            from bayeslmm.covariance.lowrank import decompose_lowrank
            from bayeslmm.estimation.reml import reml

            dec = decompose_lowrank(op)
            fit = reml(y_lab, dec, X_lab, **fit_kw)
            return (fit, op) if return_operator else fit
        from bayeslmm.estimation.krylov import fit_krylov, krylov_model

        model = krylov_model(op, data.y, data.X, n_probes=n_probes, n_steps=n_steps,
                             seed=seed)
        st = op.stats
        fit = fit_krylov(model, info={
            "passes": st.total_passes, "product_passes": st.passes,
            "decode_passes": st.decode_passes,
            "seconds_per_pass": float(np.mean(st.seconds)) if st.seconds else 0.0,
            "decode_seconds": float(np.sum(st.decode_seconds)),
            "gflops": st.gflops, "bed_bytes_per_pass": st.bed_bytes_per_pass,
            "genotype_bytes_per_pass": st.genotype_bytes_per_pass,
            "cache": op.storage, "precision": op.precision, "engine": "krylov",
            "resumed_passes": op.store.resumed if op.store is not None else 0,
            "scheduler": "distributed" if client is not None else "threads"})
        return (fit, op) if return_operator else fit
    finally:
        op.close()


@contextlib.contextmanager
def scheduler_client(address: str | None) -> Iterator[Any]:
    """A ``dask.distributed`` client of the scheduler at ``address`` (``--scheduler``),
    closed afterwards; None without an address (the local threaded scheduler)."""
    if not address:
        yield None
        return
    from distributed import Client

    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the dask scheduler at '{address}': "
                         f"{' '.join(str(exc).split())}") from None
    try:
        yield client
    finally:
        client.close()
