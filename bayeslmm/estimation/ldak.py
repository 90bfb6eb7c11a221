"""GRMs under LDAK's alpha model and the profile likelihood of alpha.

The GCTA GRM gives every standardized SNP the same expected contribution to h2, whatever
its frequency. Speed et al. (2012, 2017; LDAK) scale SNP i by [2 p_i (1 - p_i)]^(alpha / 2)
instead of [2 p_i (1 - p_i)]^(-1/2), so that its expected heritability is proportional to
[2 p_i (1 - p_i)]^(1 + alpha): alpha = -1 is GCTA's model (notes section 3), LDAK's default
is -0.25, and alpha > -1 puts more heritability on common SNPs. With z_ij the GCTA
standardized genotype ((x_ij - 2 p_i) / sqrt(2 p_i (1 - p_i)), 0 for a missing call, i.e.
mean imputation, as LDAK does) and s_i = [2 p_i (1 - p_i)]^(1 + alpha),

    K_alpha = sum_i s_i z_i z_i' / sum_i s_i

(the normalisation keeps the mean diagonal near 1, so sigma_g2 stays on the scale of Vp).
Without missing data K_{-1} is GCTA's GRM exactly. This is LDAK's kinship with all LD
weights equal to 1 (LDAK's ``--ignore-weights YES``).

The profile likelihood of alpha: the REML fit at each alpha of a grid (the GRMs of all alphas
are accumulated in one pass over the genotypes), its restricted log-likelihood and h2; the
grid maximum and the values within chi2_1(0.95) / 2 = 1.92 of it (an approximate 95%
interval), as Speed et al. choose alpha.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import DEFAULT_BLOCK_SIZE, standardized_genotypes
from bayeslmm.io import GRM, read_plink

__all__ = ["AlphaProfile", "alpha_profile", "grm_alpha", "grms_alpha"]

CHI2_1_95_HALF = 1.9207294103470748  # chi2_1(0.95) / 2


def grms_alpha(source, alphas: Sequence[float], *, maf: float = 0.01, geno: float = 1.0,
               block_size: int = DEFAULT_BLOCK_SIZE,
               chromosomes: Iterable[str | int] | None = None,
               allele_freq: np.ndarray | None = None,
               progress: bool | None = None) -> dict[float, GRM]:
    """LDAK-alpha GRMs for several alphas from one pass over the genotypes.

    Parameters
    ----------
    source : xarray.Dataset or path
        PLINK prefix or dataset (:func:`bayeslmm.io.read_plink`).
    alphas : sequence of float
        Values of alpha (``-1`` is GCTA's GRM).
    maf : float, default 0.01
        SNPs with MAF < ``maf`` are dropped: with alpha < -1 a rare SNP's weight
        [2p(1-p)]^(1+alpha) explodes, and monomorphic SNPs have none.
    geno, block_size, chromosomes, allele_freq, progress
        As :func:`bayeslmm.genotypes.kinship.grm`.

    Returns
    -------
    dict of float -> GRM
    """
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise InputError("give at least one alpha")
    if not np.all(np.isfinite(alphas)):
        raise InputError(f"alpha must be finite, got {alphas}")
    ds = source if isinstance(source, xr.Dataset) else read_plink(source)
    N = ds.sizes["sample"]
    num = {a: np.zeros((N, N)) for a in alphas}
    den = dict.fromkeys(alphas, 0.0)
    M = 0
    for blk in standardized_genotypes(ds, maf=maf, geno=geno, block_size=block_size,
                                      chromosomes=chromosomes, allele_freq=allele_freq,
                                      progress=progress):
        het = 2.0 * blk.p * (1.0 - blk.p)
        ok = het > 0
        Z, het = blk.Z[:, ok], het[ok]
        M += int(ok.sum())
        for a in alphas:
            s = het ** (1.0 + a)
            Zs = Z * np.sqrt(s)
            num[a] += Zs @ Zs.T
            den[a] += float(s.sum())
    if M == 0:
        raise InputError(f"no polymorphic SNP passed QC (maf={maf:g}, geno={geno:g})")
    ids = pd.DataFrame({"fid": ds["fid"].to_numpy().astype(str),
                        "iid": ds["iid"].to_numpy().astype(str)})
    out = {}
    for a in alphas:
        K = num[a] / den[a]
        K = (K + K.T) / 2.0
        out[a] = GRM.from_arrays(K, ids, n_snps=np.full((N, N), float(M)), M=M,
                                 label=f"alpha={a:g}")
    return out


def grm_alpha(source, alpha: float = -0.25, **options) -> GRM:
    """The LDAK-alpha GRM (module docstring); ``alpha=-1`` is GCTA's. Options as
    :func:`grms_alpha`."""
    return grms_alpha(source, [alpha], **options)[float(alpha)]


@dataclass(frozen=True)
class AlphaProfile:
    """Profile likelihood of alpha.

    Attributes
    ----------
    table : pandas.DataFrame
        Index ``alpha``; columns ``loglik`` (restricted, at the REML fit), ``h2``, ``h2_se``,
        ``delta_loglik`` (to the grid maximum).
    alpha_hat : float
        The grid value with the highest likelihood.
    ci : (float, float)
        Grid values within 1.92 log-likelihood units of the maximum (approximate 95%
        interval; an end at the edge of the grid means the interval may extend beyond it).
    """

    table: pd.DataFrame
    alpha_hat: float
    ci: tuple[float, float]

    def plot(self, path=None, ax=None):
        """The profile log-likelihood over alpha with the 95% cut."""
        # The user's matplotlib backend is left as it is (the CLI chooses Agg itself).
        import matplotlib.pyplot as plt

        fig = None
        if ax is None:
            fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        t = self.table
        ax.plot(t.index, t["delta_loglik"], "o-", color="C0")
        ax.axhline(-CHI2_1_95_HALF, color="C3", ls="--", lw=1, label="95% cut (1.92)")
        ax.axvline(self.alpha_hat, color="k", lw=1, ls=":")
        ax.set_xlabel("alpha")
        ax.set_ylabel("REML log-likelihood - max")
        ax.legend(frameon=False, fontsize=8)
        fig = fig or ax.figure
        if path is not None:
            fig.tight_layout()
            fig.savefig(path, format="png")
        return fig


def alpha_profile(y, source, X=None, *, alphas: Sequence[float] = (-1.25, -1.0, -0.75, -0.5,
                                                                   -0.25, 0.0, 0.25),
                  **options) -> AlphaProfile:
    """REML at each alpha of a grid: the profile likelihood of alpha (module docstring).

    Parameters
    ----------
    y : pandas.Series or array_like
        Phenotype; a Series labelled by IID (or "FID IID") is aligned to the genotypes.
    source : xarray.Dataset or path
        Genotypes.
    X : array_like, optional
        Covariates (aligned like y).
    alphas : sequence of float
    **options
        Passed to :func:`grms_alpha` (``maf``, ``geno``, ...).

    Returns
    -------
    AlphaProfile
    """
    from bayeslmm.estimation.reml import reml

    grms = grms_alpha(source, alphas, **options)
    rows = []
    for a, G in grms.items():
        K = G.K
        fit = reml(y, K, X)
        rows.append({"alpha": a, "loglik": fit.loglik, "h2": float(fit.h2),
                     "h2_se": float(fit.h2_se)})
    table = pd.DataFrame(rows).set_index("alpha").sort_index()
    table["delta_loglik"] = table["loglik"] - table["loglik"].max()
    best = float(table["loglik"].idxmax())
    inside = table.index[table["delta_loglik"] >= -CHI2_1_95_HALF]
    return AlphaProfile(table, best, (float(inside.min()), float(inside.max())))
