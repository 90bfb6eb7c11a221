"""PLINK/GCTA sample and SNP filters: ``--keep``, ``--remove``, ``--extract``, ``--exclude``,
``--chr``, ``--geno``, ``--maf``.

Each filter returns the subset dataset (``isel``, so it stays readable block by block by
:func:`~bayeslmm.io.iter_variant_blocks`) and a :class:`FilterStep` saying how many samples
or SNPs it removed, which the command line logs. The order is PLINK 1.9's: samples first
(``--keep`` then ``--remove``), then SNPs by name (``--extract`` then ``--exclude``), by
chromosome, by missing-call rate (``--geno``) and by minor-allele frequency (``--maf``), the
last two computed on the samples that remain.

File formats (PLINK's):

* ``--keep`` / ``--remove``: one sample per line, ``FID IID`` (further columns ignored);
* ``--extract`` / ``--exclude``: one SNP ID per line (the first field; further ignored).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.io.text import read_lines

__all__ = [
    "FilterStep",
    "filter_samples",
    "filter_variants",
    "read_sample_list",
    "read_variant_list",
    "sample_mask",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FilterStep:
    """What one filter did: ``flag`` (e.g. ``"--maf 0.01"``) removed ``n_removed`` of the
    ``n_before`` ``unit`` ("samples" or "SNPs"); ``note`` adds detail (IDs not found...)."""

    flag: str
    unit: str
    n_before: int
    n_removed: int
    note: str = ""

    @property
    def n_after(self) -> int:
        return self.n_before - self.n_removed

    def __str__(self) -> str:
        return (f"{self.flag}: removed {self.n_removed} of {self.n_before} {self.unit}, "
                f"{self.n_after} left" + (f" ({self.note})" if self.note else ""))


def read_sample_list(path: str | os.PathLike[str], what: str = "sample list"
                     ) -> pd.MultiIndex:
    """Read a PLINK ``--keep``/``--remove`` file: ``FID IID`` per line.

    Returns
    -------
    pandas.MultiIndex
        Levels ``fid``, ``iid`` (str), duplicates removed, in file order.

    Raises
    ------
    FileFormatError
        Missing file, not UTF-8, a line with one field, or no sample.
    """
    fid, iid = [], []
    for lineno, line in enumerate(read_lines(path, what), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise FileFormatError(f"{what} file '{path}', line {lineno}: expected FID and IID, "
                                  f"found 1 field ('{parts[0]}')")
        fid.append(parts[0])
        iid.append(parts[1])
    if not fid:
        raise FileFormatError(f"{what} file '{path}' lists no sample")
    mi = pd.MultiIndex.from_arrays([fid, iid], names=["fid", "iid"])
    return mi[~mi.duplicated()]


def read_variant_list(path: str | os.PathLike[str], what: str = "SNP list") -> np.ndarray:
    """Read a PLINK ``--extract``/``--exclude`` file: one SNP ID per line (first field).

    Returns
    -------
    numpy.ndarray of str
        The IDs, duplicates removed, in file order.
    """
    ids = [line.split()[0] for line in read_lines(path, what) if line.split()]
    if not ids:
        raise FileFormatError(f"{what} file '{path}' lists no SNP")
    return np.asarray(list(dict.fromkeys(ids)), dtype=object)


def _as_ids(x, what: str) -> pd.MultiIndex:
    if x is None or isinstance(x, pd.MultiIndex):
        return x
    if isinstance(x, (str, os.PathLike)):
        return read_sample_list(x, what)
    raise InputError(f"{what}: expected a file name or a (FID, IID) MultiIndex, got "
                     f"{type(x).__name__}")


def _labels(mi: pd.MultiIndex) -> np.ndarray:
    return np.array([f"{f} {i}" for f, i in mi], dtype=object)


def sample_mask(ids: pd.MultiIndex, keep=None, remove=None) -> tuple[np.ndarray, list[FilterStep]]:
    """Which of ``ids`` (FID, IID) pass ``--keep`` and ``--remove``.

    Parameters
    ----------
    ids : pandas.MultiIndex
        The samples to filter.
    keep, remove : path or pandas.MultiIndex, optional
        Sample lists (:func:`read_sample_list`).

    Returns
    -------
    (numpy.ndarray of bool, list of FilterStep)
    """
    lab = _labels(ids)
    mask = np.ones(len(lab), dtype=bool)
    steps = []
    for flag, x, inside in (("--keep", keep, True), ("--remove", remove, False)):
        lst = _as_ids(x, f"{flag} sample list")
        if lst is None:
            continue
        listed = set(_labels(lst))
        hit = np.isin(lab, list(listed))
        n_before = int(mask.sum())
        new = mask & (hit if inside else ~hit)
        unknown = len(listed - set(lab))
        steps.append(FilterStep(flag, "samples", n_before, n_before - int(new.sum()),
                                f"{unknown} of the {len(listed)} listed IDs not found"
                                if unknown else ""))
        mask = new
    return mask, steps


def _nonempty(n: int, steps: list[FilterStep], unit: str) -> None:
    if n == 0:
        raise InputError(f"no {unit} left after the filters: " + "; ".join(map(str, steps)))


def filter_samples(ds: xr.Dataset, keep=None, remove=None
                   ) -> tuple[xr.Dataset, list[FilterStep]]:
    """Keep the samples of a genotype dataset listed in ``keep`` and not in ``remove``
    (PLINK ``--keep``, ``--remove``; matched on FID and IID).

    Raises
    ------
    InputError
        No sample left.
    """
    ids = pd.MultiIndex.from_arrays([ds["fid"].to_numpy().astype(str),
                                     ds["iid"].to_numpy().astype(str)], names=["fid", "iid"])
    mask, steps = sample_mask(ids, keep, remove)
    _nonempty(int(mask.sum()), steps, "sample")
    return (ds if mask.all() else ds.isel(sample=np.flatnonzero(mask))), steps


def filter_variants(
    ds: xr.Dataset,
    *,
    extract=None,
    exclude=None,
    chromosomes: Iterable[str | int] | None = None,
    maf: float = 0.0,
    geno: float = 1.0,
    progress: bool | None = None,
) -> tuple[xr.Dataset, list[FilterStep]]:
    """Filter the SNPs of a genotype dataset the PLINK way.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`bayeslmm.io.read_plink` (possibly already subset).
    extract, exclude : path or array of str, optional
        SNP IDs to keep / to drop (:func:`read_variant_list`).
    chromosomes : iterable, optional
        Keep SNPs on these chromosomes (PLINK ``--chr``).
    maf, geno : float
        Drop SNPs with a minor-allele frequency below ``maf`` or a missing-call rate above
        ``geno`` among the dataset's samples (PLINK ``--maf``, ``--geno``; a SNP with no
        call is dropped by ``--geno``). Needs one pass over the genotypes, made only when
        ``maf > 0`` or ``geno < 1``.
    progress : bool, optional
        Progress bar of that pass.

    Returns
    -------
    (xarray.Dataset, list of FilterStep)

    Raises
    ------
    InputError
        No SNP left, a chromosome not in the data, ``maf``/``geno`` out of range.
    """
    from bayeslmm.genotypes.kinship import chromosome_mask, variant_qc

    if not 0.0 <= maf <= 0.5:
        raise InputError(f"maf must be in [0, 0.5], got {maf}")
    if not 0.0 <= geno <= 1.0:
        raise InputError(f"geno must be in [0, 1], got {geno}")
    snp = ds["snp"].to_numpy().astype(str)
    mask = np.ones(len(snp), dtype=bool)
    steps: list[FilterStep] = []

    def step(flag: str, new: np.ndarray, note: str = "") -> np.ndarray:
        n_before = int(mask.sum())
        steps.append(FilterStep(flag, "SNPs", n_before, n_before - int((mask & new).sum()),
                                note))
        return mask & new

    for flag, x, inside in (("--extract", extract, True), ("--exclude", exclude, False)):
        if x is None:
            continue
        lst = (read_variant_list(x, f"{flag} SNP list") if isinstance(x, (str, os.PathLike))
               else np.asarray(x, dtype=object))
        hit = np.isin(snp, lst.astype(str))
        unknown = len(set(lst.astype(str)) - set(snp))
        mask = step(flag, hit if inside else ~hit,
                    f"{unknown} of the {len(lst)} listed IDs not found" if unknown else "")
    if chromosomes is not None:
        wanted = [str(c) for c in chromosomes]
        mask = step(f"--chr {' '.join(wanted)}",
                    chromosome_mask(ds["chrom"].to_numpy(), wanted))
    _nonempty(int(mask.sum()), steps, "SNP")
    if maf > 0 or geno < 1:
        pos = np.flatnonzero(mask)
        qc = variant_qc(ds.isel(variant=pos), progress=progress)

        def on_all(v: np.ndarray) -> np.ndarray:
            full = np.zeros(len(snp), dtype=bool)
            full[pos] = v
            return full

        called = qc["n_called"].to_numpy() > 0
        if not called.all():
            mask = step("no genotype call", on_all(called))
        if geno < 1:
            mask = step(f"--geno {geno:g}",
                        on_all(called & (qc["missing_rate"].to_numpy() <= geno + 1e-12)))
        if maf > 0:
            # NaN MAF (no call) compares False: already counted above.
            mask = step(f"--maf {maf:g}", on_all(qc["maf"].to_numpy() >= maf - 1e-12))
        _nonempty(int(mask.sum()), steps, "SNP")
    return (ds if mask.all() else ds.isel(variant=np.flatnonzero(mask))), steps
