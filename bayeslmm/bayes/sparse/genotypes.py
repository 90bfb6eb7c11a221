"""The genotypes a sparse SNP prior samples on, from a genotype dataset (docs/sparse-priors.md,
"From the command line").

:func:`snp_matrix` puts a dataset (:func:`bayeslmm.inputs.read_genotypes`: ``.bed``,
``.pgen``, BGEN, VCF) in the phenotype's sample order, standardizes it with the allele
frequencies of the analysed samples (as GEMMA, whose genotypes are centred over them) and
carries what the per-SNP table of GEMMA's ``-bslmm`` reports: chromosome, ID, position and the
number of missing calls among the analysed samples, with the A1 frequency ``p`` that turns an
effect on the standardized scale into one per copy of the counted allele,
b_allele = b / sqrt(2 p (1 - p)).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from bayeslmm.data import sample_index
from bayeslmm.errors import InputError
from bayeslmm.genotypes.kinship import iter_variant_blocks, standardized_genotype_matrix

__all__ = ["per_allele", "snp_matrix"]


def snp_matrix(ds: xr.Dataset, samples, *, maf: float = 0.0, geno: float = 1.0,
               chromosomes=None, progress: bool | None = None) -> xr.DataArray:
    """The standardized ``(sample, variant)`` matrix of ``ds`` on ``samples`` (labels, in
    that order), SNPs passing ``maf``/``geno``/``chromosomes``; coordinates ``snp``,
    ``chrom``, ``pos``, ``a1``, ``p`` (A1 frequency) and ``n_miss`` (missing calls).

    Raises
    ------
    InputError
        No SNP passes the filters, or a sample of ``samples`` has no genotypes.
    """
    idx = sample_index(np.asarray(samples).astype(str), ds["sample"].to_numpy().astype(str),
                       "the genotypes")
    sub = ds if idx is None else ds.isel(sample=idx)
    # one pass for the missing calls of every SNP, carried through the QC as a coordinate
    n_miss = np.zeros(sub.sizes["variant"], dtype=np.int64)
    for blk in iter_variant_blocks(sub, dtype="float32"):
        n_miss[blk.variants] = np.isnan(blk.genotypes).sum(axis=0)
    sub = sub.assign_coords(n_miss=("variant", n_miss))
    Z = standardized_genotype_matrix(sub, maf=maf, geno=geno, chromosomes=chromosomes,
                                     progress=progress)
    if Z.sizes["variant"] == 0:
        raise InputError("no SNP passes the filters (--maf, --geno, --chr): nothing to sample")
    return Z


def per_allele(effect: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Effects on the standardized scale -> per copy of the counted (A1) allele: divided by
    sqrt(2 p (1 - p)); 0 for a monomorphic SNP (its standardized column is 0)."""
    sd = np.sqrt(2.0 * p * (1.0 - p))
    return np.divide(effect, sd, out=np.zeros_like(sd, dtype=float), where=sd > 0)
