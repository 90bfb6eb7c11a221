"""Writers of the result files of the command line: GCTA ``.hsq``, ``.indi.blp`` and
``.snp.blp``, the association table, the posterior (netCDF) and its summary table.

Every file is written to a temporary file in the destination folder and renamed into place
(:func:`~bayeslmm.io.grm_files.atomic_write`), so a failure never leaves a partial file.
A command that writes several files stages them all with :class:`StagedOutputs` and renames
them only once every one has been written: either all of a run's files appear or none does.

File layouts
------------
``PREFIX.hsq`` (GCTA ``--reml``)
    Tab-separated ``Source Variance SE`` header, then ``V(G)``, ``V(e)``, ``Vp``, ``V(G)/Vp``
    (one ``V(Gk)`` and ``V(Gk)/Vp`` row per kernel and a ``Sum of V(G)/Vp`` row with several),
    ``logL``, ``logL0``, ``LRT``, ``df``, ``Pval``, ``n``; single-valued rows have no SE field.
``PREFIX.indi.blp`` (GCTA ``--reml-pred-rand``; no header)
    ``FID IID`` then, for each genetic component k, ``sigma_k2 * (P y)_i`` (GCTA's
    "intermediate variable") and the BLUP ``g_k,i = sigma_k2 (K_k P y)_i``, then for the
    residual ``sigma_e2 * (P y)_i`` and the BLUP residual ``e_i = sigma_e2 (P y)_i`` (the two
    residual columns are equal, as in GCTA). With one GRM: 6 columns, the 4th is the
    genetic value. This is GCTA's own ``o_rand_eff << Py[i]*varcmp[j] << u(i, j)`` loop.
``PREFIX.snp.blp`` (GCTA ``--blup-snp``; no header)
    ``SNP A1 effect``: the BLUP of each SNP's effect per copy of A1 (column 5 of the
    ``.bim``), ``b_j = (sigma_g2 / M) sum_i (x_ij - 2 p_j) (P y)_i / (2 p_j (1 - p_j))``,
    GCTA's formula; ``plink --score PREFIX.snp.blp 1 2 3`` gives the genetic values.
    GCTA adds one more column (the residual's "intermediate variable" mapped the same way,
    which is not an effect); it is not written.
``PREFIX.assoc.tsv``
    Header ``chrom snp pos a1 a2 af n beta se chi2 p``, one row per variant, tab-separated.
``PREFIX.posterior.nc``, ``PREFIX.posterior.tsv``
    The ArviZ DataTree as netCDF4 (h5netcdf engine) and its ``arviz.summary`` table.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.bayes.summaries import posterior_summary
from bayeslmm.errors import InputError
from bayeslmm.io.grm_files import atomic_write, ordinary_file_mode
from bayeslmm.reports.formats import FIGURE_FORMATS
from bayeslmm.reports.run_log import RESULTS

log = logging.getLogger("bayeslmm.cli")  # the run's log

__all__ = [
    "check_output_prefix",
    "check_overwrites",
    "log_stale_outputs",
    "prefix_lock",
    "same_file",
    "stale_outputs",
    "write_assoc_tables",
    "ASSOC_COLUMNS",
    "StagedOutputs",
    "assoc_table",
    "indi_blp_table",
    "posterior_summary",
    "snp_blp_table",
    "write_assoc",
    "write_indi_blp",
    "write_posterior",
    "write_snp_blp",
    "write_text",
]

ASSOC_COLUMNS = ("chrom", "snp", "pos", "a1", "a2", "af", "n", "beta", "se", "chi2", "p")


# ----------------------------------------------------------------------------- staging
class StagedOutputs:
    """Write several files so that either all of them appear or none does.

    Each ``write_*`` goes to a hidden temporary file beside its destination; :meth:`commit`
    renames them all into place (``os.replace``, atomic per file). Used as a context
    manager, the staged files are committed on success and deleted on any exception.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with StagedOutputs() as out:
    ...     out.write_text(d / "a.txt", "hello\\n")
    >>> (d / "a.txt").read_text()
    'hello\\n'
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []
        self._after: list[Callable[[], None]] = []
        self.committed: list[Path] = []

    def on_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once every output is in place (e.g. remove a run's resume state,
        which a failed or stopped run keeps so that it can resume)."""
        self._after.append(action)

    def _temp(self, path: Path) -> Path:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        return Path(tmp)

    def write_bytes(self, path: str | os.PathLike[str],
                    write: Callable[[IO[bytes]], None]) -> Path:
        """Stage ``path``; ``write(fh)`` writes its content to a binary file handle."""
        path = Path(path)
        tmp = self._temp(path)
        self._pending.append((tmp, path))  # registered first, so a failing write is cleaned
        with open(tmp, "wb") as fh:
            write(fh)
        return path

    def write_text(self, path: str | os.PathLike[str], text: str) -> Path:
        """Stage a UTF-8 text file."""
        return self.write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))

    def write_with(self, path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
        """Stage a file written by a library that wants a path (netCDF, PNG): ``write(tmp)``."""
        path = Path(path)
        tmp = self._temp(path)
        self._pending.append((tmp, path))
        write(tmp)
        return path

    def write_prefix(self, prefix: str | os.PathLike[str], suffixes: Sequence[str],
                     write: Callable[[str], None]) -> list[Path]:
        """Stage a set of files ``prefix + suffix`` written by ``write(tmp_prefix)`` (e.g.
        :func:`~bayeslmm.io.write_grm`, which writes ``.grm.bin``, ``.grm.N.bin``, ``.grm.id``)."""
        prefix = Path(prefix)
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{prefix.name}.", dir=prefix.parent))
        tmp_prefix = tmp_dir / prefix.name
        targets = [Path(f"{prefix}{s}") for s in suffixes]
        for s, t in zip(suffixes, targets, strict=True):
            self._pending.append((Path(f"{tmp_prefix}{s}"), t))
        self._pending.append((tmp_dir, tmp_dir))  # the folder itself, removed at the end
        write(str(tmp_prefix))
        return targets

    @property
    def destinations(self) -> list[Path]:
        """The files that :meth:`commit` will create or replace."""
        return [dest for tmp, dest in self._pending if tmp != dest]

    def commit(self) -> list[Path]:
        """Rename every staged file into place; return the destinations.

        All or nothing: an existing destination is first moved aside, and if any rename
        fails (or the run is interrupted meanwhile) the files already renamed are removed
        and the ones moved aside are put back, so the folder is as it was before the run.
        """
        files = [(tmp, dest) for tmp, dest in self._pending if tmp != dest]
        dirs = [tmp for tmp, dest in self._pending if tmp == dest]
        for _, dest in files:
            if dest.is_dir():
                self.abort()
                raise InputError(f"cannot write '{dest}': a folder of that name exists")
        mode = ordinary_file_mode()
        moved: list[tuple[Path, Path]] = []  # (backup, dest)
        done: list[Path] = []
        try:
            for tmp, dest in files:
                os.chmod(tmp, mode)
                if dest.exists() or dest.is_symlink():
                    bak = tmp.with_name(f"{tmp.name}.old")
                    os.replace(dest, bak)
                    moved.append((bak, dest))
                os.replace(tmp, dest)
                done.append(dest)
        except BaseException:
            for dest in done:
                dest.unlink(missing_ok=True)
            for bak, dest in moved:
                os.replace(bak, dest)
            self.abort()
            raise
        for bak, _ in moved:
            bak.unlink(missing_ok=True)
        self.committed.extend(done)
        for d in dirs:
            _rmtree_quiet(d)
        for action in self._after:
            action()
        self._pending.clear()
        return list(self.committed)

    def abort(self) -> None:
        """Delete every staged temporary file; no destination is touched."""
        for tmp, dest in reversed(self._pending):
            if tmp == dest:
                _rmtree_quiet(tmp)
            else:
                try:
                    tmp.unlink()
                except FileNotFoundError:
                    pass
        self._pending.clear()

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _rmtree_quiet(d: Path) -> None:
    import shutil

    shutil.rmtree(d, ignore_errors=True)


def write_text(path: str | os.PathLike[str], text: str,
               staged: StagedOutputs | None = None) -> Path:
    """Write UTF-8 text atomically (or stage it in ``staged``)."""
    if staged is not None:
        return staged.write_text(path, text)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    return Path(path)


def _ids(samples: Iterable[str]) -> tuple[list[str], list[str]]:
    fid, iid = [], []
    for s in samples:
        f, _, i = str(s).partition(" ")
        fid.append(f)
        iid.append(i)
    return fid, iid


def indi_blp_table(blup: xr.Dataset, sigma2: Sequence[float]) -> pd.DataFrame:
    """GCTA's ``.indi.blp`` table from a :func:`bayeslmm.blup.blup` result.

    Parameters
    ----------
    blup : xarray.Dataset
        ``g`` (and ``g_component`` with several kernels) and ``residual`` over ``sample``,
        whose labels are ``"FID IID"``.
    sigma2 : sequence of float
        ``(sigma_g2_1, ..., sigma_g2_k, sigma_e2)`` (``fit.sigma2``).

    Returns
    -------
    pandas.DataFrame
        Columns ``fid, iid``, then ``Py_<c>, blup_<c>`` per genetic component ``c`` and
        ``Py_e, blup_e`` (see the module docstring for their meaning).
    """
    sigma2 = np.asarray(sigma2, dtype=float)
    k = sigma2.size - 1
    se = sigma2[-1]
    resid = blup["residual"].to_numpy()
    # residual = sigma_e2 P y (notes eq. 63), so P y is recovered exactly when sigma_e2 > 0.
    if se <= 0:
        raise InputError("sigma_e2 = 0: P y, and so GCTA's .indi.blp, is undefined")
    Py = resid / se
    if k == 1:
        gk = blup["g"].to_numpy()[:, None]
        names = ["G"]
    else:
        gk = blup["g_component"].to_numpy()
        names = [str(c) for c in blup["component"].to_numpy()]
    fid, iid = _ids(blup["sample"].to_numpy())
    cols: dict[str, object] = {"fid": fid, "iid": iid}
    for j, n in enumerate(names):
        cols[f"Py_{n}"] = sigma2[j] * Py
        cols[f"blup_{n}"] = gk[:, j]
    cols["Py_e"] = se * Py
    cols["blup_e"] = resid
    return pd.DataFrame(cols)


def _tsv(df: pd.DataFrame, header: bool) -> str:
    # %.6g as GCTA's setprecision(6); tabs, no index.
    return df.to_csv(sep="\t", header=header, index=False, float_format="%.6g",
                     lineterminator="\n")


def write_indi_blp(blup: xr.Dataset, sigma2: Sequence[float], path: str | os.PathLike[str],
                   staged: StagedOutputs | None = None) -> Path:
    """Write GCTA's ``.indi.blp`` (no header; see :func:`indi_blp_table`)."""
    return write_text(path, _tsv(indi_blp_table(blup, sigma2), header=False), staged)


def snp_blp_table(snp: Sequence[str], a1: Sequence[str], effect: np.ndarray) -> pd.DataFrame:
    """``SNP A1 effect`` table; ``effect`` per copy of A1 (one column, or (P, k) for k)."""
    effect = np.asarray(effect, dtype=float)
    effect = effect[:, None] if effect.ndim == 1 else effect
    if effect.shape[0] != len(snp) or len(a1) != len(snp):
        raise InputError(f"snp ({len(snp)}), a1 ({len(a1)}) and effect ({effect.shape[0]}) "
                         "must have the same length")
    cols: dict[str, object] = {"snp": list(snp), "a1": list(a1)}
    for j in range(effect.shape[1]):
        cols["effect" if effect.shape[1] == 1 else f"effect_{j + 1}"] = effect[:, j]
    return pd.DataFrame(cols)


def write_snp_blp(snp: Sequence[str], a1: Sequence[str], effect: np.ndarray,
                  path: str | os.PathLike[str], staged: StagedOutputs | None = None) -> Path:
    """Write GCTA's ``.snp.blp`` (no header): ``SNP A1 effect``."""
    return write_text(path, _tsv(snp_blp_table(snp, a1, effect), header=False), staged)


# ----------------------------------------------------------------------------- association
def assoc_table(res: xr.Dataset) -> pd.DataFrame:
    """The association result of :func:`bayeslmm.association.fixed_variance.assoc` as a table (one
    row per SNP)
    with columns :data:`ASSOC_COLUMNS`."""
    missing = [c for c in ASSOC_COLUMNS if c not in res.variables]
    if missing:
        raise InputError(f"association result lacks {missing}")
    return pd.DataFrame({c: res[c].to_numpy() for c in ASSOC_COLUMNS})


def write_assoc(res: xr.Dataset, path: str | os.PathLike[str],
                staged: StagedOutputs | None = None) -> Path:
    """Write the association table, tab-separated with a header; p-values keep their full
    precision (%.6g keeps 6 significant digits, also for 1e-300)."""
    return write_text(path, _tsv(assoc_table(res), header=True), staged)


#: GCTA ``--mlma`` columns, and where they come from in an association result
MLMA_COLUMNS = {"Chr": "chrom", "SNP": "snp", "bp": "pos", "A1": "a1", "A2": "a2",
                "Freq": "af", "b": "beta", "se": "se", "p": "p"}


def mlma_table(res: xr.Dataset) -> pd.DataFrame:
    """GCTA's ``.mlma`` layout (Chr SNP bp A1 A2 Freq b se p; A1 the counted allele)."""
    return pd.DataFrame({k: res[v].to_numpy() for k, v in MLMA_COLUMNS.items()})


#: GEMMA's columns after ``af`` for each test (``-lmm 1``, ``2``, ``3``): the variable each
#: comes from; the fixed-variance tests are written in the ``-lmm 1`` layout without the
#: per-SNP fit's columns
GEMMA_TEST_COLUMNS = {
    "wald": {"beta": "beta", "se": "se", "logl_H1": "logl_H1", "l_remle": "lambda",
             "p_wald": "p"},
    "lrt": {"logl_H1": "logl_H1", "l_mle": "lambda", "p_lrt": "p"},
    "score": {"beta": "beta", "se": "se", "p_score": "p"},
}
_GEMMA_FIXED = {"beta": "beta", "se": "se", "p_wald": "p"}


def gemma_assoc_table(res: xr.Dataset) -> pd.DataFrame:
    """GEMMA's ``.assoc.txt`` layout of one test: chr rs ps n_miss allele1 allele0 af, then
    ``-lmm 1`` (wald: beta se logl_H1 l_remle p_wald), ``-lmm 2`` (lrt: logl_H1 l_mle
    p_lrt) or ``-lmm 3`` (score: beta se p_score) columns; allele1 is the counted allele.
    SNPs that were not tested (filtered, monomorphic) are left out, as GEMMA does. The
    fixed-variance tests (exact/mlma, GRAMMAR) are written as beta se p_wald, their p from
    the test's own chi2_1 statistic (not GEMMA's per-SNP F test)."""
    n = res["n"].to_numpy()
    cols = GEMMA_TEST_COLUMNS.get(str(res.attrs.get("test")), _GEMMA_FIXED)
    df = pd.DataFrame({
        "chr": res["chrom"].to_numpy(), "rs": res["snp"].to_numpy(),
        "ps": res["pos"].to_numpy(), "n_miss": int(res.attrs["n_samples"]) - n,
        "allele1": res["a1"].to_numpy(), "allele0": res["a2"].to_numpy(),
        "af": res["af"].to_numpy()} | {c: res[v].to_numpy() for c, v in cols.items()})
    tested = ~res["monomorphic"].to_numpy()
    if "filtered" in res:
        tested &= ~res["filtered"].to_numpy()
    return df[tested].reset_index(drop=True)


def _gemma_text(df: pd.DataFrame) -> str:
    """GEMMA's number formats: af with 3 decimals, every other number %.6e."""
    out = df.copy()
    out["af"] = out["af"].map(lambda v: f"{v:.3f}")
    for c in out.columns[7:]:
        out[c] = out[c].map(lambda v: f"{v:.6e}")
    return out.to_csv(sep="\t", index=False, lineterminator="\n")


def glm_linear_table(res: xr.Dataset) -> pd.DataFrame:
    """plink2 ``--glm``'s ``.glm.linear`` layout of the marginal test
    (:func:`bayeslmm.association.marginal.linear_assoc`): ``#CHROM POS ID REF ALT A1 TEST
    OBS_CT BETA SE T_STAT P ERRCODE``, numbers as plink2 prints them (6 significant digits,
    ``NA`` untested). ALT and A1 are the counted allele (``.bim`` column 5, plink2's ALT);
    a SNP without variation is ``CONST_ALLELE``; SNPs filtered by --maf/--geno are left
    out, as plink2 does."""
    if "obs_ct" not in res or "t" not in res:
        raise InputError(f"the .glm.linear layout is the linear test's (a t statistic per SNP "
                         f"on its observed samples); this result is the "
                         f"{res.attrs.get('test', 'mixed-model')!r} test's")
    num = {"BETA": "beta", "SE": "se", "T_STAT": "t", "P": "p"}
    a1 = res["a1"].to_numpy()
    df = pd.DataFrame({
        "#CHROM": res["chrom"].to_numpy(), "POS": res["pos"].to_numpy(),
        "ID": res["snp"].to_numpy(), "REF": res["a2"].to_numpy(), "ALT": a1, "A1": a1,
        "TEST": "ADD", "OBS_CT": res["obs_ct"].to_numpy()}
        | {c: [f"{v:.6g}" if np.isfinite(v) else "NA" for v in res[k].to_numpy()]
           for c, k in num.items()}
        | {"ERRCODE": np.where(res["monomorphic"].to_numpy(), "CONST_ALLELE", ".")})
    return df[~res["filtered"].to_numpy()].reset_index(drop=True)


ASSOC_FORMATS = {"tsv": (assoc_table, ".assoc.tsv"), "mlma": (mlma_table, ".mlma"),
                 "gemma": (gemma_assoc_table, ".assoc.txt"),
                 "glm": (glm_linear_table, ".glm.linear")}


def write_assoc_as(res: xr.Dataset, fmt: str, path: str | os.PathLike[str],
                   staged: StagedOutputs | None = None) -> Path:
    """Write one test's result in the layout ``fmt`` ("tsv", "mlma", "gemma" or "glm")."""
    if fmt not in ASSOC_FORMATS:
        raise InputError(f"format must be one of {sorted(ASSOC_FORMATS)}, got {fmt!r}")
    table = ASSOC_FORMATS[fmt][0](res)
    text = _gemma_text(table) if fmt == "gemma" else _tsv(table, header=True)
    return write_text(path, text, staged)


# ----------------------------------------------------------------------------- posterior
def write_posterior(idata: xr.DataTree, nc_path: str | os.PathLike[str],
                    tsv_path: str | os.PathLike[str], staged: StagedOutputs | None = None,
                    var_names: Sequence[str] | None = None) -> tuple[Path, Path]:
    """Write the posterior DataTree as netCDF (h5netcdf) and its summary as a TSV table."""
    summ = posterior_summary(idata, var_names)
    text = summ.to_csv(sep="\t", float_format="%.6g", index_label="parameter",
                       lineterminator="\n")

    def nc(p: Path) -> None:
        _clean_attrs(idata).to_netcdf(p, engine="h5netcdf")

    own = staged or StagedOutputs()
    own.write_with(nc_path, nc)
    own.write_text(tsv_path, text)
    if staged is None:
        own.commit()
    return Path(nc_path), Path(tsv_path)


def _clean_attrs(tree: xr.DataTree) -> xr.DataTree:
    """netCDF attributes must be numbers, strings or arrays; turn anything else (None,
    dicts, booleans) into text so that writing never fails on metadata."""
    tree = tree.copy()
    for node in tree.subtree:
        for k, v in list(node.attrs.items()):
            if isinstance(v, bool) or not isinstance(v, (str, int, float, np.number,
                                                          np.ndarray, list, tuple)):
                node.attrs[k] = str(v)
    return tree


def write_assoc_tables(per_test: Mapping[str, xr.Dataset], prefix: str | os.PathLike[str],
                       fmt: str, staged: StagedOutputs, *,
                       chromosomes: Sequence[str] | None = None) -> list[Path]:
    """Stage one association table per test (``PREFIX<suffix>`` for one test,
    ``PREFIX.<test><suffix>`` for several) in the layout ``fmt`` (:data:`ASSOC_FORMATS`),
    restricted to ``chromosomes`` (PLINK's --chr), each logged with its counts."""
    from bayeslmm.genotypes.kinship import chromosome_mask

    suffix = ASSOC_FORMATS[fmt][1]
    out = []
    for t, r in per_test.items():
        if chromosomes:
            r = r.isel(variant=np.flatnonzero(chromosome_mask(r["chrom"].to_numpy(),
                                                              chromosomes)))
        name = f"{prefix}{suffix}" if len(per_test) == 1 else f"{prefix}.{t}{suffix}"
        out.append(write_assoc_as(r, fmt, name, staged))
        n_filt = int(r["filtered"].sum()) if "filtered" in r else 0
        n_mono = int((r["monomorphic"] & ~r["filtered"]).sum()) if "filtered" in r else \
            int(r["monomorphic"].sum())
        log.info("%s test: %d variants, %d tested, %d skipped (%d filtered by --maf/--geno, "
                 "%d monomorphic); written to %s; genomic-control lambda %.4f.", t,
                 r.sizes["variant"], r.sizes["variant"] - n_filt - n_mono, n_filt + n_mono,
                 n_filt, n_mono, name, float(r.attrs["lambda_gc"]))
        logging.getLogger(RESULTS).info("%s test, strongest associations:\n%s", t,
                                        top_hits(r).to_string(index=False))
    return out


def top_hits(r: xr.Dataset, n: int = 10) -> pd.DataFrame:
    """The ``n`` tested variants of an association result with the smallest p-values."""
    cols = [c for c in ("chrom", "pos", "a1", "beta", "se", "p") if c in r]
    df = r[cols].to_dataframe()
    return df[np.isfinite(df["p"])].nsmallest(n, "p").reset_index()


# ----------------------------------------------------------------------------- a run's files
#: the names bayeslmm gives its outputs, after the prefix
#: (every figure in every --figure-format: a one-trait run after a two-trait one on the
#: same prefix leaves the two-trait .rg figure, an SVG run an earlier PNG)
_OUTPUT_NAME = re.compile(
    r"\.(hsq|indi\.blp|snp\.blp|((exact|grammar|grammar-gamma|wald|lrt|score)\.)?"
    r"(assoc\.tsv|assoc\.txt|mlma)|glm\.linear|l2\.(ldscore\.gz|M|M_5_50)"
    r"|posterior\.(nc|tsv)|compare\.tsv|sensitivity\.tsv|ldsc\.tsv|results|report\.txt"
    r"|(param|hyp|bv)\.txt|ldpred\.(tsv|nc)|sscore"
    rf"|(h2|rg|compare|sensitivity)\.({'|'.join(FIGURE_FORMATS)})"
    r"|log|(loco-chr[^./]+\.)?grm\.(bin|N\.bin|id))$")


def same_file(a: Path, b: Path) -> bool:
    """Both exist and are the same file (links followed)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_prefix(out: str, inputs: Iterable[Path], outputs: Iterable[str] = (),
                        folder: bool = False) -> Path:
    """Check an output prefix before any work: not empty, not a folder (unless ``folder``:
    the demo writes into one), in a folder that exists, and neither it nor any of the
    ``outputs`` suffixes after it naming one of the ``inputs``. Returns it as a Path.

    Raises
    ------
    InputError
        Naming the prefix and what to give instead.
    """
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise InputError(msg)

    need(bool(out and out.strip()), "--out is empty; give an output prefix, e.g. "
                                    "--out results/run1")
    p = Path(out)
    if folder:
        need(not p.exists() or p.is_dir(), f"--out '{out}' is a file; the demo writes its "
                                           "files into a folder")
        return p
    need(not out.endswith(("/", os.sep)),
         f"--out '{out}' ends in '/': it is the start of the output file names (e.g. "
         f"--out {out}run1 writes {out}run1.hsq), not a folder")
    need(not p.is_dir(), f"--out '{out}' is a folder; give a prefix inside it, e.g. "
                         f"--out {p / 'run1'}")
    need(p.parent == Path("") or p.parent.is_dir(),
         f"output folder '{p.parent}' does not exist (from --out {out})")
    inputs = list(inputs)
    for f in inputs:
        if same_file(p, f):
            raise InputError(f"--out '{out}' is the input file '{f}'; outputs are named "
                             f"'{out}.hsq' etc., give a prefix that is not an input file")
    for sfx in (*outputs, ".log"):
        for f in inputs:
            if same_file(Path(f"{out}{sfx}"), f):
                raise InputError(f"this run writes '{out}{sfx}', which is the input file "
                                 f"'{f}'; choose another --out")
    return p


def log_stale_outputs(prefix: str | os.PathLike[str], written: Iterable[Path],
                      inputs: Iterable[Path] = ()) -> None:
    """Log the files of an earlier run with this prefix (:func:`stale_outputs`) that this
    run leaves as they are, so that nobody takes them for part of these results."""
    stale = stale_outputs(prefix, written, inputs)
    if stale:
        log.warning("%d file(s) with prefix '%s' are from an earlier run and are not rewritten "
                    "by this one, so they may not match these results: %s", len(stale),
                    prefix, ", ".join(str(f) for f in stale))


@contextlib.contextmanager
def prefix_lock(prefix: str | os.PathLike[str] | None) -> Iterator[Path | None]:
    """Hold ``PREFIX.lock`` for the duration of a run, so that two runs writing the same
    prefix do not both commit (the second would silently replace the first's results).

    The lock file is created with O_EXCL and holds ``PID host``; it is removed when the
    block ends, by success, error or a signal (:class:`~bayeslmm.errors.Interrupted` passes
    through the block). One left by a process that no longer exists (killed with SIGKILL,
    a power cut) on this host is taken over, with a warning in the log. ``None``: no lock.

    Raises
    ------
    InputError
        Another live run holds the prefix: one line naming it, the holder's PID and host.
    """
    if prefix is None:
        yield None
        return
    path = Path(f"{prefix}.lock")
    me = f"{os.getpid()} {socket.gethostname()}"
    for _ in range(3):  # a takeover can race another one: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = path.read_text(errors="replace").split() if path.exists() else []
            pid = int(holder[0]) if holder and holder[0].isdigit() else None
            host = holder[1] if len(holder) > 1 else socket.gethostname()
            if pid is not None and (host != socket.gethostname() or _alive(pid)):
                raise InputError(f"another bayeslmm run (PID {pid} on {host}) is writing "
                                 f"prefix '{prefix}' (lock file '{path}'); wait for it, or "
                                 "give another --out") from None
            log.warning("taking over '%s', left by a run that no longer exists (PID %s)",
                        path, pid)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(me + "\n")
        break
    else:
        raise InputError(f"cannot take the lock file '{path}' for prefix '{prefix}'")
    try:
        yield path
    finally:
        try:
            if path.read_text(errors="replace").strip() == me:  # ours, not a taker's
                path.unlink()
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    """Whether a process with this PID exists (ours counts as gone: a lock we hold is
    only found by a run in the same process after one that did not release it)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_overwrites(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Refuse to commit an output that is one of the input files (``--pheno x.hsq --out x``
    would otherwise overwrite the phenotype with the results)."""
    inputs = list(inputs)
    for o in outputs:
        for f in inputs:
            if same_file(Path(o), f):
                raise InputError(f"output '{o}' would overwrite the input file '{f}'; choose "
                                 "another --out")


def stale_outputs(prefix: str | os.PathLike[str], written: Iterable[Path],
                  inputs: Iterable[Path] = ()) -> list[Path]:
    """Files named like a bayeslmm output of ``prefix`` that this run does not write (a
    ``.snp.blp`` of an earlier ``blup --bfile`` next to a new ``.hsq``), so that the log can
    say they do not belong to these results.

    Parameters
    ----------
    prefix : path
        The run's output prefix.
    written : iterable of path
        The files the run writes.
    inputs : iterable of path
        Input files (a GRM read with ``--grm P --out P`` is not stale).
    """
    prefix = Path(prefix)
    folder = prefix.parent if str(prefix.parent) else Path(".")
    if not folder.is_dir():
        return []
    keep = {Path(p).resolve() for p in (*written, *inputs)}
    name = prefix.name
    out = []
    for f in sorted(folder.iterdir()):
        rest = f.name[len(name):] if f.name.startswith(name) else None
        if rest and _OUTPUT_NAME.fullmatch(rest) and f.is_file() and f.resolve() not in keep:
            out.append(f)
    return out
