"""File formats, read and written: PLINK 1 and 2 filesets, BGEN, VCF, GCTA GRM files,
phenotype and covariate files. No statistics, no alignment (:mod:`bayeslmm.data`), no reports
(:mod:`bayeslmm.reports`). The genotype formats are declared in :mod:`bayeslmm.io.catalogue`
(numpy-free, for the command line's flags); the names below load their module on first use."""

#: public name -> the module that defines it
_MODULES = {
    "GRM": "grm_files", "read_grm": "grm_files", "read_grm_ids": "grm_files",
    "write_grm": "grm_files",
    "read_covar": "phenotypes", "read_phenotype": "phenotypes", "read_phenotypes": "phenotypes",
    "read_qcovar": "phenotypes",
    "GenotypeBlock": "plink", "genotype_dataset": "plink", "iter_variant_blocks": "plink",
    "read_bim": "plink", "read_fam": "plink", "read_plink": "plink",
    "read_pgen": "pgen", "read_bgen": "bgen", "read_vcf": "vcf",
}


def __getattr__(name: str):
    # loaded on first use, so that the numpy-free catalogue of formats can be imported alone
    if name in _MODULES:
        import importlib

        return getattr(importlib.import_module(f"bayeslmm.io.{_MODULES[name]}"), name)
    raise AttributeError(f"module 'bayeslmm.io' has no attribute {name!r}")


__all__ = sorted(_MODULES)
