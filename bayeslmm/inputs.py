"""Files (or labelled objects) to aligned, validated inputs: what every fit starts from.

:func:`load_inputs` does for a Python user what the command line does before any fit: it
reads (or computes) the kernel(s), the phenotype(s) and the covariates, applies PLINK's
sample and SNP filters and GCTA's GRM remedies, recodes a case-control trait, aligns every
input on the samples they share by (FID, IID) (:func:`bayeslmm.data.align_samples`), drops
samples with a missing value -- logging each count -- and builds the design matrix::

    inp = bayeslmm.load_inputs("pheno.txt", grm="mouse", qcovar="age.txt")
    fit = bayeslmm.reml(inp.y, inp.K, inp.X)

Every argument takes what the files hold (a path) or the object itself (a phenotype Series
indexed by (FID, IID), a :class:`~bayeslmm.io.GRM`, an opened PLINK dataset).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayeslmm.binary import as_binary, binary_coding, check_fraction
from bayeslmm.data import align_samples, covariate_design
from bayeslmm.errors import InputError
from bayeslmm.genotypes.filters import filter_samples, filter_variants, sample_mask
from bayeslmm.genotypes.kinship import grm as compute_grm
from bayeslmm.genotypes.remedies import bend, relatedness_cutoff
from bayeslmm.io import GRM, read_covar, read_grm, read_phenotype, read_qcovar
from bayeslmm.io.text import read_lines
from bayeslmm.registry import GENOTYPE_FORMATS, genotype_format

__all__ = ["INPUT_FLAGS", "Inputs", "load_inputs", "open_genotypes", "read_genotypes",
           "read_mgrm"]

#: the command line's flags (argparse names) that :func:`load_inputs` takes, and its keywords
INPUT_FLAGS = {"mpheno": "mpheno", "grm": "grm", "mgrm": "mgrm", "bfile": "bfile",
               "covar": "covar", "qcovar": "qcovar", "keep": "keep", "remove": "remove",
               "extract": "extract", "exclude": "exclude", "chr": "chromosomes", "maf": "maf",
               "geno": "geno", "include_nonautosomal": "include_nonautosomal",
               "grm_cutoff": "grm_cutoff", "grm_bend": "grm_bend", "prevalence": "prevalence"}

log = logging.getLogger("bayeslmm.inputs")

PathOr = str | os.PathLike[str]


@dataclass
class Inputs:
    """Aligned inputs of a fit.

    Attributes
    ----------
    y : pandas.Series
        The (first) phenotype on the kept samples, indexed by (FID, IID).
    X : pandas.DataFrame
        The design: an intercept, quantitative covariates, dummy-coded discrete ones.
    K : xarray.DataArray or list of them, or None
        The kernel(s) on the kept samples, labelled (None with ``kernel=False``).
    names : list of str
        The components' names ("G", or each GRM's label with several).
    grms : list of GRM
        The GRMs on the kept samples; ``raw_grms`` as read or computed, before alignment.
    ds : xarray.Dataset or None
        The (filtered) PLINK dataset when genotypes were given.
    Y : pandas.DataFrame or None
        Every requested phenotype column on the kept samples (several traits; missing
        values kept, the multi-trait fit uses complete cases).
    """

    y: pd.Series
    X: pd.DataFrame
    K: Any
    names: list[str]
    grms: list[Any]
    ds: Any
    raw_grms: list[Any]
    Y: pd.DataFrame | None = None
    report: pd.DataFrame | None = field(default=None, repr=False)


def read_mgrm(path: PathOr) -> list[str]:
    """The GRM prefixes listed in a GCTA ``--mgrm`` file, one per line."""
    prefixes = [ln.strip() for ln in read_lines(path, "--mgrm") if ln.strip()]
    if not prefixes:
        raise InputError(f"--mgrm file '{path}' lists no GRM")
    return prefixes


def open_genotypes(fmt: str, value, **options):
    """Open genotypes of any registered format lazily: ``"bfile"`` (PLINK 1 prefix),
    ``"pfile"`` (PLINK 2 prefix), ``"bgen"`` (``[file, mode]``, ``sample=``), ``"vcf"``
    (``file`` or ``[file, "dosage=DS"]``), with plink2's ``double_id``/``id_delim``; the
    counted allele is logged (:data:`bayeslmm.registry.GENOTYPE_FORMATS`)."""
    import importlib

    import bayeslmm.io.catalogue  # noqa: F401  (declares the formats)

    if fmt not in GENOTYPE_FORMATS:
        raise InputError(f"unknown genotype format {fmt!r}; known: {', '.join(GENOTYPE_FORMATS)}")
    module, _, function = genotype_format(fmt).opener.partition(":")
    return getattr(importlib.import_module(module), function)(value, **options)


def read_genotypes(bfile, *, keep: PathOr | None = None, remove: PathOr | None = None,
                   extract: PathOr | None = None, exclude: PathOr | None = None,
                   chromosomes: Sequence[str | int] | None = None, maf: float = 0.0,
                   geno: float = 1.0, progress: bool | None = None):
    """A PLINK fileset (a prefix, or a dataset already opened by :func:`bayeslmm.io.read_plink`
    or :func:`open_genotypes`) with PLINK's ``--keep/--remove``, ``--extract/--exclude``,
    ``--chr``, ``--geno``, ``--maf`` applied (:mod:`bayeslmm.genotypes.filters`), each step
    logged with its count."""
    if isinstance(bfile, str | os.PathLike):
        ds = open_genotypes("bfile", bfile)
    else:
        ds = bfile
    ds, steps = filter_samples(ds, keep=keep, remove=remove)
    ds, more = filter_variants(ds, extract=extract, exclude=exclude, chromosomes=chromosomes,
                               maf=maf, geno=geno, progress=progress)
    for st in (*steps, *more):
        log.info("%s", st)
    return ds


def _remedies(grms: list, grm_cutoff: float | None, grm_bend: bool) -> list:
    """GCTA's --grm-cutoff and bending, applied to the GRMs as read."""
    if grm_cutoff is not None:
        grms = [g.subset(np.flatnonzero(relatedness_cutoff(g.values, grm_cutoff)))
                for g in grms]  # relatedness_cutoff logs what it removed
    if grm_bend:
        out = []
        for g in grms:
            b = bend(g.values)  # logs the eigenvalues before and after
            out.append(GRM.from_arrays(b.K, g.ids, n_snps=g.n_snps, M=g.M, label=g.label))
        grms = out
    return grms


def _keep_remove(y: pd.Series, keep, remove) -> pd.Series:
    """The phenotype restricted by --keep/--remove (so that they act with a GRM too)."""
    if keep is None and remove is None:
        return y
    mask, steps = sample_mask(y.index, keep, remove)
    for st in steps:
        log.info("%s (phenotyped samples)", st)
    if not mask.any():
        raise InputError("no phenotyped sample left after --keep/--remove")
    return y[mask]


def _case_control(y: pd.Series, prevalence: float | None) -> pd.Series:
    """With a prevalence the trait must be case-control (0/1 or PLINK 1/2, 0 missing in 1/2),
    recoded to 0/1. Without, a binary-looking trait is stated in the log and kept as is."""
    if prevalence is not None:
        check_fraction(prevalence, "the prevalence K")  # before any computation
        return as_binary(y).y  # states the coding and the counts in the log
    coding = binary_coding(y)
    if coding is not None:
        vals = set(np.unique(y.dropna()).tolist()) - {-9.0}
        if 0.0 in vals and coding == "1/2":
            log.info("The phenotype has the values 0, 1 and 2: analysed as a quantitative "
                     "trait; with --prevalence it is read as PLINK's case-control coding "
                     "(1 = control, 2 = case, 0 missing).")
        else:
            log.info("The phenotype looks like a case-control trait (%s coding); "
                     "--prevalence K adds h2 on the liability scale.", coding)
    return y


def _phenotype(pheno, mpheno: int) -> pd.Series:
    if isinstance(pheno, pd.DataFrame):
        if not 1 <= mpheno <= pheno.shape[1]:
            raise InputError(f"--mpheno {mpheno}: the phenotype table has {pheno.shape[1]} "
                             "column(s)")
        y = pheno.iloc[:, mpheno - 1]
    elif isinstance(pheno, pd.Series):
        y = pheno
    else:
        y = read_phenotype(pheno, mpheno=mpheno)
        log.info("Read phenotype '%s' (column %d) of %d samples from '%s'; %d missing.",
                 y.name, mpheno, len(y), pheno, int(y.isna().sum()))
        return y
    if not isinstance(y.index, pd.MultiIndex) or y.index.nlevels != 2:
        raise InputError("a phenotype given as a pandas object must be indexed by (FID, IID) "
                         "pairs (a 2-level MultiIndex), as bayeslmm.io.read_phenotype returns")
    return y.astype(float)


def _covariates(table, reader, what: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    out = reader(table)
    log.info("Read %d %s column(s) from '%s'.", out.shape[1], what, table)
    return out


def load_inputs(pheno, *, mpheno: int | Sequence[int] = 1, grm=None, mgrm: PathOr | None = None,
                bfile=None, grms: Sequence[Any] | None = None, covar=None, qcovar=None,
                keep: PathOr | None = None, remove: PathOr | None = None,
                extract: PathOr | None = None, exclude: PathOr | None = None,
                chromosomes: Sequence[str | int] | None = None, maf: float = 0.0,
                geno: float = 1.0, include_nonautosomal: bool = False,
                grm_cutoff: float | None = None, grm_bend: bool = False,
                prevalence: float | None = None, kernel: bool = True,
                progress: bool | None = None) -> Inputs:
    """Read and align the inputs of a fit (see the module docstring).

    Parameters
    ----------
    pheno : path, pandas.Series or pandas.DataFrame
        GCTA/PLINK phenotype file (FID IID y1 y2 ...; -9 and NA missing) or a labelled
        phenotype (index: (FID, IID) pairs).
    mpheno : int or sequence of int
        1-based phenotype column(s); several give :attr:`Inputs.Y` (the multi-trait model),
        the first is :attr:`Inputs.y`.
    grm : path or GRM, optional
        A GCTA binary GRM (prefix) or a :class:`~bayeslmm.io.GRM`.
    mgrm : path, optional
        A GCTA ``--mgrm`` file listing several GRM prefixes.
    bfile : path or xarray.Dataset, optional
        PLINK fileset (filtered here), or a dataset already opened and filtered (e.g. by
        :func:`read_genotypes`, used as it is): the GRM is computed from it when no
        ``grm``/``mgrm``/``grms`` is given
        (GCTA's, autosomes only unless ``include_nonautosomal``); it is also returned as
        :attr:`Inputs.ds`, filtered, for association and BLUP of SNP effects.
    grms : sequence of GRM, optional
        GRMs already computed (LOCO), used instead of ``grm``/``mgrm``/``bfile``.
    covar, qcovar : path or pandas.DataFrame, optional
        Discrete (dummy-coded) and quantitative covariates; an intercept is always included.
    keep, remove, extract, exclude, chromosomes, maf, geno
        PLINK's sample and SNP filters (``--keep``, ``--remove``, ``--extract``,
        ``--exclude``, ``--chr``, ``--maf``, ``--geno``).
    grm_cutoff : float, optional
        GCTA's ``--grm-cutoff``: drop one of each pair of samples related above it.
    grm_bend : bool
        Bend the GRM(s) to positive semi-definite (GCTA's eigenvalue bending).
    prevalence : float, optional
        Population prevalence K of a case-control trait: the phenotype must then be coded
        0/1 or PLINK's 1/2, and is recoded to 0/1.
    kernel : bool
        False: read no kernel (the engines that fit from the genotypes); the phenotype and
        covariates are aligned on the genotyped samples of ``bfile``.
    progress : bool, optional
        Progress bars on the passes over the genotypes (None: when on a terminal).

    Returns
    -------
    Inputs
    """
    mphenos = [mpheno] if isinstance(mpheno, int | np.integer) else list(mpheno)
    if not mphenos:
        raise InputError("mpheno lists no phenotype column")
    if len(set(mphenos)) != len(mphenos):
        raise InputError(f"--mpheno lists a column twice: {mphenos}")
    if prevalence is not None:
        check_fraction(prevalence, "the prevalence K")
    ds = None
    if isinstance(bfile, str | os.PathLike):
        ds = read_genotypes(bfile, keep=keep, remove=remove, extract=extract, exclude=exclude,
                            chromosomes=chromosomes, maf=maf, geno=geno, progress=progress)
    elif bfile is not None:
        ds = bfile  # opened (and filtered) by the caller: used as it is
    kernels = list(grms or [])
    if not kernel:
        if ds is None:
            raise InputError("fitting from the genotypes needs a PLINK fileset or other "
                             "genotypes (--bfile, --pfile, --bgen, --vcf)")
    elif kernels:
        pass
    elif mgrm is not None:
        kernels = [read_grm(pre) for pre in read_mgrm(mgrm)]
    elif grm is not None:
        kernels = [grm if isinstance(grm, GRM) else read_grm(grm)]
    else:
        if ds is None:
            raise InputError("give a kernel: --grm PREFIX, --mgrm FILE or genotypes (--bfile, "
                             "--pfile, --bgen, --vcf)")
        g = compute_grm(ds, maf=maf, geno=geno, chromosomes=chromosomes, progress=progress,
                        autosome=not include_nonautosomal)
        log.info("Computed the GRM from %d SNPs passing QC (maf >= %g, geno <= %g).",
                 g.M, maf, geno)
        kernels = [g]
    for g in kernels:
        log.info("GRM '%s': %d samples, %d SNPs.", g.label, g.N, g.M)
    kernels = _remedies(kernels, grm_cutoff, grm_bend)
    y = _phenotype(pheno, mphenos[0])
    y = _keep_remove(y, keep, remove)
    y = _case_control(y, prevalence)
    aligned: dict[str, Any] = {}
    names = ["GRM"] if len(kernels) == 1 else [f"GRM{j + 1}" for j in range(len(kernels))]
    aligned.update(zip(names, kernels, strict=True))
    aligned["phenotype"] = y
    if qcovar is not None:
        aligned["qcovar"] = _covariates(qcovar, read_qcovar, "quantitative covariate")
    if covar is not None:
        aligned["covar"] = _covariates(covar, read_covar, "discrete covariate dummy")
    if ds is not None and not kernels:
        aligned["bfile"] = ds  # samples must be genotyped when no GRM is read
    a = align_samples(aligned)
    log.info("%d samples in common after dropping missing values.", a.N)
    yk = a["phenotype"]
    X = covariate_design(yk.index, *(a[n] for n in ("qcovar", "covar") if n in a.data))
    kern = [a[n] for n in names]
    K = None if not kern else kern[0].K if len(kern) == 1 else [g.K for g in kern]
    comp = ["G"] if len(kern) <= 1 else [g.label or n for g, n in zip(kern, names, strict=True)]
    Y = None
    if len(mphenos) > 1:
        cols = {}
        for k in mphenos:
            yk_ = _phenotype(pheno, k)
            name = str(yk_.name) if yk_.name is not None else f"pheno{k}"
            if name in cols:
                name = f"{name}_{k}"
            cols[name] = yk_.reindex(yk.index)
        Y = pd.DataFrame(cols, index=yk.index)
        for name, col in Y.items():
            log.info("Trait '%s': %d of the %d aligned samples missing.", name,
                     int(col.isna().sum()), len(Y))
    return Inputs(y=yk, X=X, K=K, names=comp, grms=kern, ds=ds, raw_grms=kernels, Y=Y,
                  report=a.report)
