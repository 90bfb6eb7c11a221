"""The passes over the genotypes: their bookkeeping, and the store that lets an interrupted
run resume after the last pass it completed.

A pass computes dask collections over the genotypes (:meth:`GenotypeOperator.compute
<bayeslmm.genotypes.operator.GenotypeOperator.compute>`); its result is a pure function of
the genotypes, the operator's settings and the pass's input (the block of vectors ``V``, or
the graph's dask token). :class:`PassStore` keeps each completed pass's result in one folder,
under the digest of that input, with a manifest naming the genotypes and settings. A run
started again with the same inputs (and, for the Krylov engine, the same probe seed) asks for
the same passes in the same order: the completed ones are read back bit for bit, so the run
goes on from where it stopped and gives the identical result. Inputs that changed (another
fileset, a filter, another precision or chunking, which changes the rounding) start afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bayeslmm.errors import InputError

__all__ = ["PassStats", "PassStore", "digest", "remove_store"]

log = logging.getLogger(__name__)

_MANIFEST = "manifest.json"


@dataclass
class PassStats:
    """Bookkeeping of the passes over the genotypes (for benchmarks and logs).

    A *decode* pass reads the ``.bed`` (bed-reader, int8); a *product* pass reads the
    int8 cache (or decodes the ``.bed`` again when the operator keeps no cache).
    """

    passes: int = 0
    vectors: int = 0
    seconds: list[float] = field(default_factory=list)
    block_sizes: list[float] = field(default_factory=list)  # vectors per product pass
    bed_bytes_per_pass: int = 0
    genotype_bytes_per_pass: int = 0
    decode_passes: int = 0
    decode_seconds: list[float] = field(default_factory=list)
    flops_per_vector: int = 0

    @property
    def bytes_read(self) -> int:
        """Genotype bytes read by all passes (decode passes: ``.bed``)."""
        return (self.passes * self.genotype_bytes_per_pass
                + self.decode_passes * self.bed_bytes_per_pass)

    @property
    def total_passes(self) -> int:
        return self.passes + self.decode_passes

    @property
    def gflops(self) -> float:
        """Floating-point rate of the product passes (GFLOP/s, the dense products only)."""
        t = float(np.sum(self.seconds))
        return self.flops_per_vector * float(np.sum(self.block_sizes)) / t / 1e9 if t else 0.0


def digest(*parts) -> str:
    """SHA-256 of arrays (dtype, shape and bytes) and strings, in order."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            a = np.ascontiguousarray(p)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


class PassStore:
    """The completed passes of a run, in ``folder`` (e.g. ``PREFIX.resume/``).

    Parameters
    ----------
    folder : path
        Created if absent. One that holds passes of other inputs (its manifest differs) is
        emptied; a folder that is not such a store (no manifest, yet not empty) is refused
        rather than touched.
    identity : dict
        What the passes' results depend on besides their input: the genotype files (path,
        size, modification time), the samples, the filters, the precision, the chunking.
    """

    def __init__(self, folder: str | os.PathLike[str], identity: dict):
        self.folder = Path(folder)
        text = json.dumps(identity, sort_keys=True, default=str)
        manifest = self.folder / _MANIFEST
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"cannot keep the resume state in '{self.folder}': a file of "
                             "that name exists")
        if self.folder.is_dir():
            if not manifest.exists():
                if any(self.folder.iterdir()):
                    raise InputError(f"'{self.folder}' is not a bayeslmm resume folder (no "
                                     f"{_MANIFEST}) and is not empty; move it or give "
                                     "--no-resume")
            elif manifest.read_text() != text:
                log.info("'%s' holds the passes of other inputs: starting afresh.",
                         self.folder)
                self._clear()
        n = len(self._passes()) if self.folder.is_dir() else 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write(manifest, text.encode())
        self.resumed = 0
        if n:
            log.info("Resuming from '%s': %d completed passes over the genotypes.",
                     self.folder, n)
        else:
            log.info("Resume state in '%s' (kept if the run is stopped; removed when it "
                     "succeeds).", self.folder)

    def _passes(self) -> list[Path]:
        return sorted(self.folder.glob("pass-*.npz"))

    def _clear(self) -> None:
        for f in self._passes():
            f.unlink()
        (self.folder / _MANIFEST).unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes) -> None:
        # a temporary file renamed into place: a pass is there whole or not at all
        fd, tmp = tempfile.mkstemp(prefix=".pass.", dir=self.folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)

    def load(self, key: str) -> tuple | None:
        """The stored result of the pass whose input digests to ``key``, or None."""
        path = self.folder / f"pass-{key}.npz"
        if not path.exists():
            return None
        with np.load(path, allow_pickle=False) as z:
            out = tuple(z[f"arr_{i}"] for i in range(len(z.files)))
        self.resumed += 1
        return out

    def save(self, key: str, outputs: tuple) -> None:
        """Keep a completed pass's result (numpy arrays)."""
        import io

        buf = io.BytesIO()
        np.savez(buf, *[np.asarray(o) for o in outputs])
        self._write(self.folder / f"pass-{key}.npz", buf.getvalue())

    def remove(self) -> None:
        """Delete the store (the run succeeded)."""
        remove_store(self.folder)


def remove_store(folder: str | os.PathLike[str] | None) -> None:
    """Delete a :class:`PassStore`'s folder: its passes, temporary files and manifest, then
    the folder if nothing else is in it. A folder without the manifest is not a store and
    is left alone (as is a missing one)."""
    folder = None if folder is None else Path(folder)
    if folder is None or not (folder / _MANIFEST).is_file():
        return
    for f in [*folder.glob("pass-*.npz"), *folder.glob(".pass.*"), folder / _MANIFEST]:
        f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        folder.rmdir()
