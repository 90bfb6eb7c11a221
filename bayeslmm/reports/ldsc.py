"""LDSC's files: LD scores (``PREFIX.l2.ldscore.gz``, ``.l2.M``, ``.l2.M_5_50``) in the layout
``ldsc.py --l2`` writes and ``ldsc.py --h2`` reads."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

from bayeslmm.genotypes.ldscore import LDScores
from bayeslmm.io.grm_files import atomic_write
from bayeslmm.reports.writers import StagedOutputs, write_text

__all__ = ["LDSCORE_SUFFIXES", "ldscore_text", "write_ldscores"]

log = logging.getLogger(__name__)

LDSCORE_SUFFIXES = (".l2.ldscore.gz", ".l2.M", ".l2.M_5_50")


def ldscore_text(ld: LDScores) -> str:
    """``CHR SNP BP L2``, tab-separated with a header, L2 with 3 decimals (ldsc's
    ``float_format='%.3f'``)."""
    return ld.table[["CHR", "SNP", "BP", "L2"]].to_csv(sep="\t", index=False,
                                                       float_format="%.3f", lineterminator="\n")


def write_ldscores(ld: LDScores, prefix: str | os.PathLike[str],
                   staged: StagedOutputs | None = None) -> list[Path]:
    """Write PREFIX.l2.ldscore.gz (gzip; ``mtime=0``, so equal scores give equal bytes),
    PREFIX.l2.M (the number of SNPs) and PREFIX.l2.M_5_50 (those with MAF > 0.05), each one
    line as LDSC writes them."""
    gz = gzip.compress(ldscore_text(ld).encode(), mtime=0)
    path = Path(f"{prefix}.l2.ldscore.gz")
    if staged is not None:
        out = [staged.write_bytes(path, lambda fh: fh.write(gz))]
    else:
        atomic_write(path, lambda fh: fh.write(gz))
        out = [path]
    out.append(write_text(f"{prefix}.l2.M", f"{ld.M}\n", staged))
    out.append(write_text(f"{prefix}.l2.M_5_50", f"{ld.M_5_50}\n", staged))
    log.info("LD scores of %d SNPs (M_5_50 = %d) written to %s.l2.ldscore.gz, .l2.M, "
             ".l2.M_5_50.", ld.M, ld.M_5_50, prefix)
    return out
