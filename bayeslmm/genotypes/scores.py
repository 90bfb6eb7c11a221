"""Polygenic scores of a target fileset from per-allele SNP effects (plink2 ``--score``'s sum).

``S_i = sum_j beta_j g_ij`` with ``g_ij`` the count of the effect's allele in sample i: a
target SNP whose A1/A2 are the effect's A2/A1 is counted as ``2 - g`` (the other allele),
one whose alleles match neither way is left out (logged); a missing call contributes the
target's mean count ``2 p_j`` (plink2's default mean imputation, with the frequency from
all of the target's samples: plink2 ``--nonfounders``; plink2 alone uses founders only).
One pass over the matched SNPs, block by block (progress bar).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError
from bayeslmm.io.plink import DEFAULT_BLOCK_SIZE, as_dataset, iter_variant_blocks
from bayeslmm.progress import progress_bar

__all__ = ["polygenic_scores"]

log = logging.getLogger(__name__)


def polygenic_scores(target, effects: pd.DataFrame, *, block_size: int = DEFAULT_BLOCK_SIZE,
                     progress: bool | None = None) -> pd.DataFrame:
    """Score every sample of ``target`` (module docstring).

    Parameters
    ----------
    target : xarray.Dataset or str
        The target genotypes (:func:`bayeslmm.io.read_plink` or a prefix).
    effects : pandas.DataFrame
        ``SNP A1 A2 beta``: the effect of each copy of A1.
    block_size : int
        SNPs per block.
    progress : bool, optional
        Progress bar over the blocks.

    Returns
    -------
    pandas.DataFrame
        ``FID IID ALLELE_CT SCORE_SUM`` (plink2's ``.sscore`` names; ``ALLELE_CT`` is twice
        the SNPs scored, mean-imputed calls included).
    """
    ds = as_dataset(target)
    snp = pd.Index(ds["snp"].to_numpy().astype(str))
    if snp.has_duplicates:
        raise InputError("the target has duplicated SNP IDs; a score needs unique IDs")
    pos = snp.get_indexer(effects["SNP"].astype(str))
    a1, a2 = (ds[k].to_numpy().astype(str) for k in ("a1", "a2"))
    e1, e2 = effects["A1"].astype(str).str.upper(), effects["A2"].astype(str).str.upper()
    found = pos >= 0
    t1 = np.where(found, np.char.upper(a1[np.maximum(pos, 0)]), "")
    t2 = np.where(found, np.char.upper(a2[np.maximum(pos, 0)]), "")
    same = found & (t1 == e1.to_numpy()) & (t2 == e2.to_numpy())
    swap = found & ~same & (t1 == e2.to_numpy()) & (t2 == e1.to_numpy())
    log.info("Scores: %d of %d effects' SNPs in the target (%d counted as the other allele); "
             "%d not in it, %d with other alleles left out.", int((same | swap).sum()),
             len(effects), int(swap.sum()), int((~found).sum()),
             int((found & ~same & ~swap).sum()))
    use = same | swap
    if not use.any():
        raise InputError("no SNP of the effects is in the target with the same alleles")
    order = np.argsort(pos[use])
    var = pos[use][order]
    beta = effects["beta"].to_numpy(np.float64)[use][order]
    flip = swap[use][order]
    score = np.zeros(ds.sizes["sample"])
    blocks = iter_variant_blocks(ds, block_size=block_size, variants=var)
    n_blocks = -(-var.size // block_size)
    if progress or (progress is None and n_blocks >= 10):
        blocks = progress_bar(blocks, total=n_blocks, desc="scoring", unit="block")
    for blk in blocks:
        sel = np.searchsorted(var, blk.variants)
        G = np.asarray(blk.genotypes, dtype=np.float64)
        G = np.where(flip[sel], 2.0 - G, G)
        miss = np.isnan(G)
        G[miss] = np.broadcast_to(np.nanmean(G, axis=0), G.shape)[miss]
        score += np.nan_to_num(G) @ beta[sel]  # an SNP never called: 0
    return pd.DataFrame({"FID": ds["fid"].to_numpy(), "IID": ds["iid"].to_numpy(),
                         "ALLELE_CT": 2 * var.size, "SCORE_SUM": score})
