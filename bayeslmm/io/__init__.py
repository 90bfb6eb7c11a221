"""File formats, read and written: PLINK filesets, GCTA GRM files, phenotype and covariate
files. No statistics, no alignment (:mod:`bayeslmm.data`), no reports (:mod:`bayeslmm.reports`)."""

from bayeslmm.io.grm_files import GRM, read_grm, read_grm_ids, write_grm
from bayeslmm.io.phenotypes import (
    read_covar,
    read_phenotype,
    read_phenotypes,
    read_qcovar,
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
    "GenotypeBlock",
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
    "write_grm",
]
