"""The :class:`GRM` result object and GCTA binary GRM files.

GCTA's binary format (also written by ``plink1.9 --make-grm-bin``):

* ``prefix.grm.bin``: float32 (little-endian), the lower triangle of the N x N
  matrix *including* the diagonal, row by row: ``A[0,0], A[1,0], A[1,1], A[2,0]...``
  i.e. N(N+1)/2 values, N(N+1)/2 * 4 bytes.
* ``prefix.grm.N.bin``: the number of SNPs used for each pair, same layout, float32.
* ``prefix.grm.id``: ``FID<TAB>IID`` per line, in matrix order.

Reading then writing a file gives byte-identical files (float32 -> float64 -> float32
is exact).  Writers go to a temporary file in the same directory that is renamed
into place, so an error never leaves a partial file behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import xarray as xr

from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.labels import sample_labels

__all__ = ["GRM", "atomic_write", "read_grm", "read_grm_ids", "write_grm"]

_DT = np.dtype("<f4")


def _labels(ids: pd.DataFrame) -> np.ndarray:
    return sample_labels(ids["fid"], ids["iid"])


@dataclass(frozen=True, eq=False)
class GRM:
    """A genomic relationship matrix with its per-pair SNP counts.

    Attributes
    ----------
    K : xarray.DataArray
        ``(N, N)`` float64 matrix with dims ``("sample", "sample_")``; both carry
        the ``"FID IID"`` labels as coordinate values (plus ``fid``/``iid`` on
        ``sample``).
    n_snps : numpy.ndarray or None
        ``(N, N)`` number of SNPs non-missing in both samples of each pair
        (GCTA's ``.grm.N.bin``); None if unknown.
    ids : pandas.DataFrame
        Columns ``fid``, ``iid`` (str), in matrix order.
    M : int
        Number of SNPs used (passed QC).  For a GRM read from a file this is the
        largest per-pair count, i.e. GCTA does not store it.
    label : str
        Free text, e.g. ``"all"``, ``"chr3"`` or ``"loco-chr3"``.
    """

    K: xr.DataArray
    n_snps: np.ndarray | None
    ids: pd.DataFrame
    M: int
    label: str = field(default="")

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.K.shape != (n, n):
            raise InputError(f"GRM matrix has shape {self.K.shape} but there are {n} IDs")
        if self.n_snps is not None and self.n_snps.shape != (n, n):
            raise InputError(
                f"GRM SNP-count matrix has shape {self.n_snps.shape} but there are {n} IDs"
            )

    @classmethod
    def from_arrays(
        cls,
        K: np.ndarray,
        ids: pd.DataFrame | Sequence[tuple[str, str]],
        *,
        n_snps: np.ndarray | None = None,
        M: int | None = None,
        label: str = "",
    ) -> GRM:
        """Wrap a plain ``(N, N)`` array and its (FID, IID) list as a :class:`GRM`."""
        if not isinstance(ids, pd.DataFrame):
            ids = pd.DataFrame(list(ids), columns=["fid", "iid"])
        ids = ids[["fid", "iid"]].astype(str).reset_index(drop=True)
        K = np.asarray(K, dtype=np.float64)
        lab = _labels(ids)
        da = xr.DataArray(
            K,
            dims=("sample", "sample_"),
            coords={
                "sample": lab,
                "sample_": lab,
                "fid": ("sample", ids["fid"].to_numpy(dtype=object)),
                "iid": ("sample", ids["iid"].to_numpy(dtype=object)),
            },
            name="K",
        )
        if M is None:
            M = int(np.nanmax(n_snps)) if n_snps is not None and n_snps.size else 0
        return cls(da, n_snps, ids, int(M), label)

    @property
    def values(self) -> np.ndarray:
        """The matrix as a float64 numpy array."""
        return self.K.to_numpy()

    @property
    def sample_labels(self) -> np.ndarray:
        """``"FID IID"`` labels in matrix order."""
        return self.K["sample"].to_numpy()

    @property
    def N(self) -> int:  # noqa: N802 - the notes' name
        """Number of samples."""
        return len(self.ids)

    def subset(self, index: np.ndarray | Sequence[int]) -> GRM:
        """The GRM restricted (and reordered) to the given sample positions."""
        idx = np.asarray(index, dtype=np.int64)
        n = None if self.n_snps is None else self.n_snps[np.ix_(idx, idx)]
        return GRM.from_arrays(
            self.values[np.ix_(idx, idx)],
            self.ids.iloc[idx].reset_index(drop=True),
            n_snps=n,
            M=self.M,
            label=self.label,
        )

    def to_gcta(self, prefix: str | os.PathLike[str]) -> None:
        """Write ``prefix.grm.bin``, ``prefix.grm.N.bin`` and ``prefix.grm.id``."""
        write_grm(self, prefix)

    def summary(self) -> pd.DataFrame:
        """Mean/variance of the diagonal and off-diagonal entries (as GCTA reports)."""
        K = self.values
        off = K[np.tril_indices(self.N, -1)]
        d = np.diag(K)
        return pd.DataFrame(
            {
                "mean": [d.mean(), off.mean() if off.size else np.nan],
                "var": [d.var(), off.var() if off.size else np.nan],
            },
            index=["diagonal", "off-diagonal"],
        )


# ------------------------------------------------------------------------------ files


def ordinary_file_mode() -> int:
    """The permissions ``open()`` would give a new file: 0666 minus the umask.

    ``tempfile.mkstemp`` creates files readable by their owner only; results renamed into
    place from such a file get these permissions instead, as users expect.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path`` and rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.chmod(tmp, ordinary_file_mode())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _grm_prefix(prefix: str | os.PathLike[str]) -> str:
    s = str(prefix)
    for ext in (".grm.bin", ".grm.N.bin", ".grm.id"):
        if s.endswith(ext):
            return s[: -len(ext)]
    return s


def read_grm_ids(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a ``.grm.id`` file (FID IID per line, tab or space separated)."""
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"GRM ID file '{path}' does not exist")
    rows = []
    from bayeslmm.io.text import read_lines

    for lineno, line in enumerate(read_lines(path, "GRM ID"), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise FileFormatError(
                f"GRM ID file '{path}', line {lineno}: expected 2 fields (FID IID), "
                f"found {len(parts)}"
            )
        rows.append(parts)
    ids = pd.DataFrame(rows, columns=["fid", "iid"], dtype=str)
    lab = _labels(ids)
    u, c = np.unique(lab.astype(str), return_counts=True)
    if (c > 1).any():
        from bayeslmm.errors import AlignmentError

        raise AlignmentError(f"GRM ID file '{path}': sample '{u[c > 1][0]}' appears twice")
    return ids


def _read_tri(path: Path, n: int) -> np.ndarray:
    if not path.exists():
        raise FileFormatError(f"GRM file '{path}' does not exist")
    expected = n * (n + 1) // 2 * 4
    size = path.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "longer than expected"
        raise FileFormatError(
            f"GRM file '{path}' has {size} bytes but its {n} IDs need "
            f"N(N+1)/2*4 = {expected} bytes (float32 lower triangle); the file is "
            f"{state} or does not belong to this .grm.id"
        )
    tri = np.fromfile(path, dtype=_DT)
    M = np.zeros((n, n), dtype=np.float64)
    r, c = np.tril_indices(n)
    M[r, c] = tri
    M[c, r] = tri
    return M


def read_grm(prefix: str | os.PathLike[str], *, read_n: bool = True) -> GRM:
    """Read a GCTA binary GRM (``prefix.grm.bin``, ``.grm.N.bin``, ``.grm.id``).

    Parameters
    ----------
    prefix : path
        The prefix (``x`` for ``x.grm.bin``); a full ``.grm.bin`` name is accepted.
    read_n : bool, default True
        Read the SNP-count file too.  If it is absent, ``n_snps`` is None.

    Raises
    ------
    FileFormatError
        If a file is missing or its size is not N(N+1)/2*4 bytes.
    """
    pre = _grm_prefix(prefix)
    ids = read_grm_ids(f"{pre}.grm.id")
    n = len(ids)
    K = _read_tri(Path(f"{pre}.grm.bin"), n)
    n_snps = None
    npath = Path(f"{pre}.grm.N.bin")
    if read_n and npath.exists():
        n_snps = _read_tri(npath, n)
    return GRM.from_arrays(K, ids, n_snps=n_snps, label=Path(pre).name)


def _tri_bytes(A: np.ndarray) -> bytes:
    r, c = np.tril_indices(A.shape[0])
    return np.ascontiguousarray(A[r, c], dtype=_DT).tobytes()


def write_grm(grm: GRM, prefix: str | os.PathLike[str]) -> None:
    """Write a :class:`GRM` as GCTA binary files (byte-compatible with GCTA/PLINK).

    If ``grm.n_snps`` is None the ``.grm.N.bin`` file is filled with ``grm.M``.
    Each file is written atomically (temp file + rename).
    """
    pre = _grm_prefix(prefix)
    K = grm.values
    if not np.all(np.isfinite(K)):
        raise InputError(f"GRM to be written to '{pre}.grm.bin' contains NaN or inf")
    n_snps = grm.n_snps if grm.n_snps is not None else np.full(K.shape, float(grm.M))
    atomic_write(f"{pre}.grm.bin", lambda fh: fh.write(_tri_bytes(K)))
    atomic_write(f"{pre}.grm.N.bin", lambda fh: fh.write(_tri_bytes(n_snps)))
    text = "".join(f"{f}\t{i}\n" for f, i in zip(grm.ids["fid"], grm.ids["iid"], strict=True))
    atomic_write(f"{pre}.grm.id", lambda fh: fh.write(text.encode("utf-8")))
