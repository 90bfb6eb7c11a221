"""Where the passes over the genotypes read them from, within a memory budget, and what
their results depend on (the resume store's identity).

* ``"int8"``: decoded once into one byte a call (float32 for dosages), kept in memory (or on
  a cluster's workers): the fastest passes, N x P bytes.
* ``"packed"``: a PLINK 1 ``.bed``'s own 2-bit bytes, read by every pass through a memory
  map (the page cache holds them while the process stays small) and decoded inside the
  product kernel (:mod:`bayeslmm.genotypes.packed`): N x P / 4 bytes, none in the process.
* ``"none"``: another format's reader decodes the file on every pass.
"""

from __future__ import annotations

import os

from bayeslmm.errors import InputError
from bayeslmm.genotypes.packed import packed_source
from bayeslmm.genotypes.passes import digest

__all__ = ["CACHES", "available_memory", "choose_cache", "pass_identity"]

#: where a pass reads the genotypes from (module docstring)
CACHES = ("int8", "packed", "none")


def pass_identity(ds, rows, maf, geno, precision, chunk_size, storage) -> dict:
    """What a pass's result depends on besides its input (:class:`PassStore`): the genotype
    file (path, size, modification time), the rows, the filters and the arithmetic."""
    path = ds.attrs.get("bed_path") or getattr(ds.attrs.get("genotype_reader"), "path", None)
    files = {}
    if path is not None and os.path.exists(path):
        st = os.stat(path)
        files = {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"files": files, "variants": digest(ds["bed_index"].to_numpy()),
            "samples": digest(ds["fam_index"].to_numpy()[rows]), "maf": maf, "geno": geno,
            "precision": precision, "chunk_size": chunk_size, "storage": storage}


def choose_cache(cache, ds, cache_bytes: int, budget: int) -> str:
    """The operator's cache (see its ``cache`` parameter)."""
    packable = packed_source(ds) is not None
    if cache is None:
        if cache_bytes <= budget / 2:
            return "int8"
        return "packed" if packable else "none"
    if cache is True:
        return "int8"
    if cache is False:
        return "packed" if packable else "none"
    if cache not in CACHES:
        raise InputError(f"cache must be one of {CACHES}, got {cache!r}")
    if cache == "packed" and not packable:
        raise InputError("the packed cache reads the 2-bit bytes of a PLINK 1 .bed; this "
                         "source is another format (use cache='int8' or 'none')")
    return cache


def available_memory(client=None) -> int:
    """Free memory of this machine, or the workers' memory limits on a cluster."""
    if client is not None:
        workers = client.scheduler_info().get("workers", {}).values()
        limits = [w.get("memory_limit") or 0 for w in workers]
        if sum(limits) > 0:
            return int(sum(limits))
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return 8 * 2**30
