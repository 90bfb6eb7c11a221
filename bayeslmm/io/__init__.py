"""File formats: PLINK filesets, GCTA GRM files, phenotype and covariate files."""

from bayeslmm.io.grm_files import GRM, read_grm, read_grm_ids, write_grm
from bayeslmm.io.phenotypes import (
    AlignedSamples,
    align_samples,
    read_covar,
    read_phenotype,
    read_phenotypes,
    read_qcovar,
    sample_ids,
)
from bayeslmm.io.plink import (
    GenotypeBlock,
    genotype_dataset,
    iter_variant_blocks,
    read_bim,
    read_fam,
    read_plink,
)

__all__ = [
    "GRM",
    "AlignedSamples",
    "GenotypeBlock",
    "align_samples",
    "genotype_dataset",
    "iter_variant_blocks",
    "read_bim",
    "read_covar",
    "read_fam",
    "read_grm",
    "read_grm_ids",
    "read_phenotype",
    "read_phenotypes",
    "read_plink",
    "read_qcovar",
    "sample_ids",
    "write_grm",
]
