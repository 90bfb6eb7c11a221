"""Reading PLINK 1 binary filesets (``.bed/.bim/.fam``) through bed-reader.

The genotypes are never required to fit in memory: :func:`read_plink` returns an
:class:`xarray.Dataset` holding only the sample and variant annotations (unless
``load=True``), and :func:`iter_variant_blocks` streams the genotype matrix in blocks
of SNPs (float64 allele counts, ``NaN`` for a missing call).

Allele coding follows PLINK and GCTA: the value is the number of copies of the
**A1** allele (column 5 of the ``.bim``), which is bed-reader's default
(``count_A1=True``).  A GRM does not depend on which allele is counted; standardized
genotypes (and therefore SNP effects) change sign.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.labels import sample_labels

__all__ = [
    "MISSING_INT8",
    "GenotypeBlock",
    "as_dataset",
    "block_bounds",
    "genotype_dataset",
    "iter_variant_blocks",
    "read_bim",
    "read_fam",
    "read_plink",
    "sample_labels",
]

log = logging.getLogger(__name__)

FAM_COLUMNS = ("fid", "iid", "father", "mother", "sex", "pheno")
BIM_COLUMNS = ("chrom", "snp", "cm", "pos", "a1", "a2")
_BED_MAGIC = b"\x6c\x1b\x01"
DEFAULT_BLOCK_SIZE = 1000
#: missing call in int8 genotypes (bed-reader's code)
MISSING_INT8 = -127


class GenotypeBlock(NamedTuple):
    """One block of consecutive (after filtering) variants.

    Attributes
    ----------
    variants : numpy.ndarray
        Integer positions of the block's variants along the ``variant`` dimension
        of the dataset the block was read from.
    genotypes : numpy.ndarray
        ``(N, b)`` float64 array of A1 allele counts (0, 1, 2) with ``NaN`` for a
        missing call.
    """

    variants: np.ndarray
    genotypes: np.ndarray


def _prefix(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if p.suffix in (".bed", ".bim", ".fam"):
        p = p.with_suffix("")
    return p


def _read_table(path: Path, ncol: int, what: str, extra_ok: bool = False) -> pd.DataFrame:
    from io import StringIO

    from bayeslmm.io.text import read_text

    # Decoded here, not by pandas, which reports a non-UTF-8 byte as an "empty" file.
    text = read_text(path, what)
    try:
        df = pd.read_csv(
            StringIO(text),
            sep=r"\s+",
            header=None,
            dtype=str,
            keep_default_na=False,
            comment=None,
            engine="c",
        )
    except pd.errors.EmptyDataError:
        raise FileFormatError(f"{what} file '{path}' is empty") from None
    except pd.errors.ParserError as exc:
        raise FileFormatError(f"{what} file '{path}' could not be parsed: {exc}") from None
    if df.shape[1] < ncol or (df.shape[1] > ncol and not extra_ok):
        raise FileFormatError(f"{what} file '{path}' has {df.shape[1]} columns; expected {ncol}")
    return df.iloc[:, :ncol].copy()


def read_fam(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a PLINK ``.fam`` file.

    Columns after the sixth (extra phenotypes, as in GEMMA's example files) are
    ignored, as PLINK does.

    Returns
    -------
    pandas.DataFrame
        Columns ``fid, iid, father, mother`` (str), ``sex`` (int) and ``pheno``
        (float, with PLINK's ``-9``/``0``-free convention: ``-9`` and ``NA`` -> NaN).
    """
    path = Path(path)
    df = _read_table(path, 6, "PLINK .fam", extra_ok=True)
    df.columns = list(FAM_COLUMNS)
    try:
        df["sex"] = df["sex"].astype(int)
    except ValueError:
        raise FileFormatError(f"PLINK .fam file '{path}': non-integer sex code") from None
    pheno = pd.to_numeric(df["pheno"], errors="coerce").astype(float)
    pheno[pheno == -9] = np.nan
    df["pheno"] = pheno
    return df


def read_bim(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a PLINK ``.bim`` file.

    Returns
    -------
    pandas.DataFrame
        Columns ``chrom, snp, a1, a2`` (str), ``cm`` (float) and ``pos`` (int64).
    """
    path = Path(path)
    df = _read_table(path, 6, "PLINK .bim")
    df.columns = list(BIM_COLUMNS)
    try:
        df["cm"] = df["cm"].astype(float)
        df["pos"] = df["pos"].astype(np.int64)
    except ValueError:
        raise FileFormatError(
            f"PLINK .bim file '{path}': non-numeric centimorgan or bp position"
        ) from None
    return df


def _check_unique_samples(labels: np.ndarray, where: str) -> None:
    u, counts = np.unique(labels.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = u[counts > 1][0]
        from bayeslmm.errors import AlignmentError

        raise AlignmentError(f"{where}: sample ID '{dup}' (FID IID) appears more than once")


def genotype_dataset(
    fam: pd.DataFrame,
    bim: pd.DataFrame,
    genotypes: np.ndarray | None = None,
    *,
    bed_path: str | os.PathLike[str] | None = None,
    reader=None,
    where: str = "genotype data",
) -> xr.Dataset:
    """Build the labelled genotype dataset from ``.fam``/``.bim`` tables.

    Parameters
    ----------
    fam, bim : pandas.DataFrame
        Tables as returned by :func:`read_fam` / :func:`read_bim` (only ``fid, iid``
        and ``chrom, snp, pos, a1, a2`` are required; ``cm`` etc. are optional).
    genotypes : numpy.ndarray, optional
        ``(N, P)`` allele counts (NaN = missing).  When given the dataset holds a
        ``genotype`` variable; otherwise it is lazy and ``bed_path`` must be given.
    bed_path : path, optional
        The ``.bed`` file the lazy dataset reads from (stored in ``attrs["bed_path"]``).
    reader : bayeslmm.io.formats.GenotypeReader, optional
        Or the reader of another format (``.pgen``, BGEN, VCF), kept in
        ``attrs["genotype_reader"]``; ``attrs["dosage"]`` says whether it gives dosages.

    Returns
    -------
    xarray.Dataset
        Dims ``sample`` and ``variant``. Coordinates ``sample`` ("FID IID" labels),
        ``fid``, ``iid``, ``fam_index`` on ``sample``; ``snp``, ``chrom``, ``pos``,
        ``a1``, ``a2``, ``bed_index`` on ``variant``.
    """
    fid = fam["fid"].astype(str).to_numpy(dtype=object)
    iid = fam["iid"].astype(str).to_numpy(dtype=object)
    labels = sample_labels(fid, iid)
    _check_unique_samples(labels, where)
    n, p = len(fam), len(bim)
    coords: dict[str, tuple] = {
        "sample": ("sample", labels),
        "fid": ("sample", fid),
        "iid": ("sample", iid),
        "fam_index": (
            "sample",
            np.asarray(fam["fam_index"] if "fam_index" in fam else np.arange(n), np.int64),
        ),
        "snp": ("variant", bim["snp"].astype(str).to_numpy(dtype=object)),
        "chrom": ("variant", bim["chrom"].astype(str).to_numpy(dtype=object)),
        "pos": ("variant", np.asarray(bim["pos"], dtype=np.int64)),
        "a1": ("variant", bim["a1"].astype(str).to_numpy(dtype=object)),
        "a2": ("variant", bim["a2"].astype(str).to_numpy(dtype=object)),
        "bed_index": (
            "variant",
            np.asarray(bim["bed_index"] if "bed_index" in bim else np.arange(p), np.int64),
        ),
    }
    if "cm" in bim:
        coords["cm"] = ("variant", np.asarray(bim["cm"], dtype=float))
    for col in ("sex", "pheno"):
        if col in fam:
            coords[col] = ("sample", fam[col].to_numpy())
    data_vars = {}
    attrs: dict[str, object] = {}
    if genotypes is not None:
        g = np.asarray(genotypes, dtype=float)
        if g.shape != (n, p):
            raise InputError(
                f"{where}: genotype matrix has shape {g.shape}; expected ({n}, {p}) "
                "(samples, variants)"
            )
        bad = ~np.isnan(g) & ~np.isin(g, (0.0, 1.0, 2.0))
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(
                f"{where}: genotype of sample '{labels[i]}' at variant "
                f"'{coords['snp'][1][j]}' is {g[i, j]!r}; expected 0, 1, 2 or NaN"
            )
        data_vars["genotype"] = (("sample", "variant"), g)
    elif bed_path is None and reader is None:
        raise InputError("genotype_dataset needs genotypes, bed_path or a reader")
    if reader is not None:
        attrs["genotype_reader"] = reader
        attrs["dosage"] = bool(reader.dosage)
    if bed_path is not None or reader is not None:
        if bed_path is not None:
            attrs["bed_path"] = str(bed_path)
        attrs["bed_iid_count"] = int(fam.attrs.get("iid_count", n))
        attrs["bed_sid_count"] = int(bim.attrs.get("sid_count", p))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _check_bed(bed: Path, n: int, p: int) -> None:
    if not bed.exists():
        raise FileFormatError(f"PLINK .bed file '{bed}' does not exist")
    with open(bed, "rb") as fh:
        magic = fh.read(3)
    if magic != _BED_MAGIC:
        raise FileFormatError(
            f"'{bed}' is not a SNP-major PLINK 1 .bed file (first bytes {magic.hex()}, "
            f"expected {_BED_MAGIC.hex()})"
        )
    expected = 3 + p * ((n + 3) // 4)
    size = bed.stat().st_size
    if size != expected:
        raise FileFormatError(
            f"PLINK .bed file '{bed}' has {size} bytes but {n} samples (.fam) and "
            f"{p} variants (.bim) need {expected}; the fileset is truncated or mismatched"
        )
    _check_padding(bed, n, p)


#: fewest variants for which "homozygous A1 everywhere" is taken as a .fam line too many
PADDING_MIN_VARIANTS = 100


def _check_padding(bed: Path, n: int, p: int) -> None:
    """Use PLINK's padding bits to catch a ``.fam`` with one line too few or too many.

    Each variant takes ceil(n / 4) bytes; when n is not a multiple of 4 the last byte has
    unused 2-bit slots, which PLINK (and bed-reader) write as 00. A line missing from the
    ``.fam`` (anywhere: every later sample shifts) leaves the last real sample in those
    slots, so they are non-zero; a line too many reads the zero padding as a sample that is
    homozygous A1 (code 00) at every variant. Only a change of n that keeps ceil(n / 4)
    reaches here; the byte count catches the others.
    """
    if p == 0 or n == 0:
        return
    bpr = (n + 3) // 4
    last = np.memmap(bed, dtype=np.uint8, mode="r", offset=3, shape=(p, bpr))[:, -1]
    last = np.array(last)  # small: one byte per variant; no memmap left open
    used = n % 4 or 4
    if used < 4:
        pad = last >> (2 * used)
        bad = int(np.count_nonzero(pad))
        if bad:
            raise FileFormatError(
                f"PLINK .bed file '{bed}' holds genotypes beyond the {n} samples of its .fam "
                f"(non-zero padding bits at {bad} of {p} variants): the .fam has fewer lines "
                "than the .bed was written for (a sample line missing?)"
            )
    if p >= PADDING_MIN_VARIANTS and used >= 2:
        code_last = (last >> (2 * (used - 1))) & 3
        code_prev = (last >> (2 * (used - 2))) & 3
        if not code_last.any() and np.count_nonzero(code_prev) >= 0.1 * p:
            raise FileFormatError(
                f"PLINK .bed file '{bed}': the last .fam sample is homozygous A1 at all {p} "
                "variants, which is what the .bed's zero padding reads as: the .fam has "
                "more lines than the .bed was written for (a line added?)"
            )


def read_plink(
    prefix: str | os.PathLike[str],
    *,
    load: bool = False,
    exclude_negative_pos: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> xr.Dataset:
    """Open a PLINK 1 binary fileset ``prefix.bed/.bim/.fam``.

    Parameters
    ----------
    prefix : path
        The fileset prefix (a trailing ``.bed``, ``.bim`` or ``.fam`` is removed).
    load : bool, default False
        If False the returned dataset is *lazy*: it holds the annotations and the
        ``.bed`` path, and genotypes are read block by block by
        :func:`iter_variant_blocks` (so a fileset larger than memory can still give
        a GRM).  If True the whole genotype matrix is read (in blocks of
        ``block_size`` variants) into a float64 ``genotype`` variable.
    exclude_negative_pos : bool, default False
        Drop variants whose ``.bim`` base-pair position is negative, as PLINK 1.9
        does ("variants with negative bp coordinates are ignored"). By default they are
        kept, as GEMMA keeps them: a GRM or a test needs no position and LOCO only the
        chromosome (on GEMMA's mouse_hs1940 they are 1,926 SNPs, GEMMA's top hit among
        them). Their count is logged either way.
    block_size : int
        Variants per read when ``load=True``.

    Returns
    -------
    xarray.Dataset
        See :func:`genotype_dataset`. ``isel`` on it (subsetting samples or
        variants) keeps it readable by :func:`iter_variant_blocks`.
    """
    pre = _prefix(prefix)
    fam = read_fam(Path(f"{pre}.fam"))
    bim = read_bim(Path(f"{pre}.bim"))
    bed = Path(f"{pre}.bed")
    n, p = len(fam), len(bim)
    _check_bed(bed, n, p)
    fam.attrs["iid_count"] = n
    bim.attrs["sid_count"] = p
    bim["bed_index"] = np.arange(p)
    neg = bim["pos"].to_numpy() < 0
    if neg.any() and not exclude_negative_pos:
        log.info("%s: %d of %d variants have a negative bp position; kept (as GEMMA; "
                 "PLINK ignores them: --exclude-negative-pos)", f"{pre}.bim",
                 int(neg.sum()), p)
    if exclude_negative_pos:
        if neg.any():
            log.info(
                "%s: %d of %d variants have a negative bp position and are excluded "
                "(as PLINK does)",
                f"{pre}.bim",
                int(neg.sum()),
                p,
            )
            attrs = dict(bim.attrs)
            bim = bim.loc[~neg].reset_index(drop=True)
            bim.attrs.update(attrs)
    ds = genotype_dataset(fam, bim, bed_path=bed, where=f"PLINK fileset '{pre}'")
    if load:
        g = np.empty((ds.sizes["sample"], ds.sizes["variant"]), dtype=np.float64)
        for blk in iter_variant_blocks(ds, block_size=block_size):
            g[:, blk.variants] = blk.genotypes
        ds["genotype"] = (("sample", "variant"), g)
    return ds


def as_dataset(source: xr.Dataset | str | os.PathLike[str]) -> xr.Dataset:
    if isinstance(source, xr.Dataset):
        return source
    if isinstance(source, (str, os.PathLike)):
        return read_plink(source)
    raise InputError(
        f"expected a PLINK prefix or a dataset from read_plink, got {type(source).__name__}"
    )


def block_bounds(n: int, block_size: int, groups: np.ndarray | None) -> list[tuple[int, int]]:
    """Split ``range(n)`` into blocks of at most ``block_size`` that never straddle a
    change of ``groups`` (e.g. a chromosome boundary)."""
    if block_size < 1:
        raise InputError(f"block_size must be a positive integer, got {block_size}")
    if groups is None or n == 0:
        cuts = [0, n]
    else:
        g = np.asarray(groups)
        cuts = [0, *(np.flatnonzero(g[1:] != g[:-1]) + 1).tolist(), n]
    bounds = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        for s in range(a, b, block_size):
            bounds.append((s, min(s + block_size, b)))
    return bounds


def iter_variant_blocks(
    source: xr.Dataset | str | os.PathLike[str],
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    variants: np.ndarray | None = None,
    split_by: str | None = None,
    num_threads: int | None = None,
    dtype: str = "float64",
) -> Iterator[GenotypeBlock]:
    """Stream the genotype matrix in blocks of variants.

    Parameters
    ----------
    source : xarray.Dataset or path
        A dataset from :func:`read_plink` / :func:`genotype_dataset` (lazy or
        loaded, possibly subset with ``isel``), or a PLINK prefix.
    block_size : int
        Maximum number of variants per block.
    variants : array of int or bool, optional
        Restrict to these variant positions (or this mask) of the dataset.
    split_by : str, optional
        Name of a ``variant`` coordinate (e.g. ``"chrom"``); blocks never contain two
        different values of it.
    num_threads : int, optional
        Threads bed-reader may use (default: its own default).
    dtype : {"float64", "int8", "float32"}
        ``"int8"`` gives the counts as bed-reader decodes them into one byte each, with
        ``MISSING_INT8`` (-127, bed-reader's code) for a missing call: a quarter of the
        memory and half the decoding time of float64. ``"float32"`` is the dosage path
        (expected allele counts, NaN missing); a dosage source refuses ``"int8"``.

    Yields
    ------
    GenotypeBlock
        ``(variants, genotypes)``: positions along ``variant`` and the ``(N, b)``
        allele counts (A1 counted; float64 with NaN = missing, or int8 as above), in
        Fortran order (one variant contiguous) when read from a ``.bed``.
    """
    if dtype not in ("float64", "int8", "float32"):
        raise InputError(f"dtype must be 'float64', 'float32' or 'int8', got {dtype!r}")
    ds = as_dataset(source)
    p = ds.sizes["variant"]
    if variants is None:
        pos = np.arange(p)
    else:
        v = np.asarray(variants)
        pos = np.flatnonzero(v) if v.dtype == bool else v.astype(np.int64)
    groups = ds[split_by].to_numpy()[pos] if split_by is not None else None
    bounds = block_bounds(len(pos), block_size, groups)
    if "genotype" in ds:
        g = ds["genotype"].transpose("sample", "variant").to_numpy()
        for a, b in bounds:
            idx = pos[a:b]
            blk = np.asarray(g[:, idx], dtype=np.float64)
            if dtype == "int8":
                blk = np.where(np.isnan(blk), MISSING_INT8, blk).astype(np.int8, order="F")
            yield GenotypeBlock(idx, blk.astype(dtype, copy=False))
        return
    reader = ds.attrs.get("genotype_reader")
    if reader is not None:  # another format (bayeslmm.io.formats): its reader decodes
        rows = ds["fam_index"].to_numpy()
        if len(rows) == reader.n_samples and np.array_equal(rows, np.arange(len(rows))):
            rows = None
        bed_index = ds["bed_index"].to_numpy()
        for a, b in bounds:
            idx = pos[a:b]
            yield GenotypeBlock(idx, reader.read(rows, bed_index[idx], dtype))
        return
    if "bed_path" not in ds.attrs:
        raise InputError(
            "dataset has neither a 'genotype' variable nor a 'bed_path' attribute; "
            "create it with read_plink or genotype_dataset"
        )
    from bed_reader import open_bed

    bed_index = ds["bed_index"].to_numpy()
    fam_index = ds["fam_index"].to_numpy()
    n_file = int(ds.attrs["bed_iid_count"])
    all_samples = len(fam_index) == n_file and np.array_equal(fam_index, np.arange(n_file))
    with open_bed(
        ds.attrs["bed_path"],
        iid_count=n_file,
        sid_count=int(ds.attrs["bed_sid_count"]),
        count_A1=True,
        num_threads=num_threads,
        properties={k: None for k in ("father", "mother", "sex", "pheno")},
    ) as bed:
        for a, b in bounds:
            idx = pos[a:b]
            cols = bed_index[idx]
            if len(cols) and np.all(np.diff(cols) == 1):
                col_sel = slice(int(cols[0]), int(cols[-1]) + 1)
            else:
                col_sel = cols
            row_sel = slice(None) if all_samples else fam_index
            g = bed.read(index=np.s_[row_sel, col_sel], dtype=dtype, order="F")
            yield GenotypeBlock(idx, g)



def open_flag(value, exclude_negative_pos: bool = False, **_) -> xr.Dataset:
    """``--bfile PREFIX [--exclude-negative-pos]`` (:mod:`bayeslmm.io.catalogue`):
    :func:`read_plink`, logged."""
    ds = read_plink(value, exclude_negative_pos=bool(exclude_negative_pos))
    log.info("Read %d samples and %d variants from PLINK fileset '%s'; counted allele: A1 "
             "(.bim column 5).", ds.sizes["sample"], ds.sizes["variant"], value)
    return ds
