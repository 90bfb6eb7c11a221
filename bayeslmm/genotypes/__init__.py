"""Genotypes: QC, standardization, GRMs, PLINK filters, the matrix-free operator, GRM remedies.

A layer above the readers (:mod:`bayeslmm.io`) and below the covariance: everything here
turns genotype files into kernels or kernel products, and knows nothing of a fit.
"""

from bayeslmm.genotypes.kinship import (
    AlleleStats,
    allele_stats,
    chromosome_mask,
    grm,
    grm_by_chromosome,
    loco_grms,
    standardized_genotype_matrix,
    standardized_genotypes,
    variant_qc,
)

__all__ = [
    "AlleleStats",
    "allele_stats",
    "chromosome_mask",
    "grm",
    "grm_by_chromosome",
    "loco_grms",
    "standardized_genotype_matrix",
    "standardized_genotypes",
    "variant_qc",
]
