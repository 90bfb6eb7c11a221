"""Sample labels: one type for a sample's (FID, IID) pair, used by every layer.

PLINK and GCTA identify a sample by two whitespace-free words, FID and IID. bayeslmm labels a
sample by the string ``"FID IID"`` -- the pair joined by one space -- everywhere: xarray
coordinates, pandas indexes of results, netCDF files and the GCTA layouts all hold it as it
is. The join is one-to-one *only* because an ID holding whitespace is refused
(:func:`sample_labels`): ("a b", "c") and ("a", "b c") would both become "a b c". Every place
that turns a pair into a label goes through :func:`sample_labels`, so no two samples can
share one; :func:`split_label` is its inverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bayeslmm.errors import AlignmentError

__all__ = ["duplicated_labels", "positional_labels", "sample_labels", "split_label"]


def sample_labels(fid: Sequence[str], iid: Sequence[str]) -> np.ndarray:
    """The ``"FID IID"`` labels used as the ``sample`` coordinate.

    The join is one-to-one only because IDs hold no whitespace (as in PLINK and GCTA, whose
    files are whitespace-delimited): ("a b", "c") and ("a", "b c") would both become
    "a b c". Such IDs are refused here, naming the first, instead of silently colliding.
    """
    fid = [str(f) for f in fid]
    iid = [str(i) for i in iid]
    for f, i in zip(fid, iid, strict=True):
        if any(ch.isspace() for ch in f + i):
            raise AlignmentError(f"sample ID ({f!r}, {i!r}) contains whitespace; FID and IID "
                                 "must be single words, as in PLINK and GCTA files")
    return np.array([f"{f} {i}" for f, i in zip(fid, iid, strict=True)], dtype=object)


def split_label(label: str) -> tuple[str, str]:
    """(FID, IID) of a label made by :func:`sample_labels`; an unpaired label (positional,
    or a bare array's) is its own FID and IID."""
    f, sep, i = str(label).partition(" ")
    return (f, i) if sep else (f, f)


def positional_labels(N: int) -> np.ndarray:
    """The labels given to unlabelled samples: "0", "1", ..."""
    return np.array([str(i) for i in range(N)])


def duplicated_labels(labels) -> list[str]:
    """The labels that occur more than once, sorted."""
    u, c = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return [str(x) for x in u[c > 1]]
