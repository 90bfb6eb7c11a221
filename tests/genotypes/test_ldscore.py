"""LD scores (``bayeslmm ldscore``) against a dense numpy computation of the same estimator
and window: every SNP's full correlation row from the LDSC-standardized genotype matrix
(missing calls at the mean, divided by the imputed column's SD), r2 - (1 - r2) / (N - 2),
summed over the SNPs within the window on the same chromosome (evidence kind: brute force)."""

from __future__ import annotations

import functools
import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
from bed_reader import open_bed

from bayeslmm.cli import main
from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.genotypes.ldscore import ld_scores
from bayeslmm.io import read_plink

DEMO = load_demo()


@functools.lru_cache(maxsize=1)
def _r2(bed_path: str) -> np.ndarray:
    """The dense unbiased r2 of every SNP pair (the demo's genotypes, read once)."""
    with open_bed(bed_path, count_A1=True) as bed:
        G = bed.read(dtype="float64")
    N = G.shape[0]
    avg = np.nanmean(G, axis=0)
    G = np.where(np.isnan(G), avg, G)
    Z = (G - avg) / G.std(axis=0)
    R = Z.T @ Z / N
    return R**2 - (1 - R**2) / (N - 2)


def _dense(prefix, coord: np.ndarray, w: float) -> np.ndarray:
    """LD scores from the whole N x P matrix, no blocks: the brute force."""
    chrom = pd.read_csv(f"{prefix}.bim", sep=r"\s+", header=None)[0].astype(str).to_numpy()
    win = (chrom[:, None] == chrom[None, :]) & (np.abs(coord[:, None] - coord[None, :]) <= w)
    return (_r2(f"{DEMO.bfile}.bed") * win).sum(axis=1)


@pytest.fixture(scope="module")
def bim():
    return pd.read_csv(f"{DEMO.bfile}.bim", sep=r"\s+", header=None)


@pytest.mark.parametrize("w, unit, block", [(100, "kb", 137), (35, "kb", 1000), (7, "snps", 50),
                                            (0, "kb", 1000)])
def test_equals_dense(bim, w, unit, block):
    """Blocks of any size (straddling chromosomes or not) give the dense scores; the demo
    has missing calls, and w = 0 leaves each SNP its own r2 = 1."""
    if unit == "kb":  # in bp against 1000 w, as ldsc's getBlockLefts
        coord, width = bim[3].to_numpy().astype(float), w * 1000.0
    else:  # the index along the chromosome
        coord, width = bim.groupby(0).cumcount().to_numpy().astype(float), w
    ld = ld_scores(read_plink(DEMO.bfile), w, unit, block_size=block, progress=False)
    np.testing.assert_allclose(ld.table["L2"], _dense(DEMO.bfile, coord, width), rtol=0,
                               atol=1e-10)
    assert ld.table["SNP"].tolist() == bim[1].tolist()
    if w == 0:
        np.testing.assert_allclose(ld.table["L2"], 1.0, atol=1e-12)


def test_cm_window_and_cli_files(bim, tmp_path):
    """--ld-wind-cm on a .bim with a genetic map; the CLI's files are LDSC's layout, the
    scores the dense ones to the 3 decimals written, M and M_5_50 counted as LDSC does."""
    ref = tmp_path / "ref"
    for s in (".bed", ".fam"):
        shutil.copy(f"{DEMO.bfile}{s}", f"{ref}{s}")
    b = bim.copy()
    b[2] = b[3] / 1e6 * 1.3  # 1.3 cM per Mb
    b.to_csv(f"{ref}.bim", sep="\t", header=False, index=False)
    assert main(["ldscore", "--bfile", str(ref), "--ld-wind-cm", "0.1", "--out",
                 str(tmp_path / "o"), "--quiet"]) == 0
    with gzip.open(tmp_path / "o.l2.ldscore.gz", "rt") as fh:
        got = pd.read_csv(fh, sep="\t")
    assert list(got.columns) == ["CHR", "SNP", "BP", "L2"]
    dense = _dense(ref, b[2].to_numpy(), 0.1)
    assert np.abs(got["L2"] - dense).max() <= 0.0005 + 1e-12
    assert not np.allclose(dense, _dense(ref, b[2].to_numpy(), 0.05), atol=1e-3)
    with open_bed(f"{ref}.bed", count_A1=True) as bed:
        p = np.nanmean(bed.read(dtype="float64"), axis=0) / 2
    maf = np.minimum(p, 1 - p)
    assert (tmp_path / "o.l2.M").read_text() == f"{len(b)}\n"
    assert (tmp_path / "o.l2.M_5_50").read_text() == f"{int((maf > 0.05).sum())}\n"
    assert 0 < int((maf > 0.05).sum()) < len(b)  # the count does filter


def test_window_edge_and_maf_exactly_5_percent(tmp_path):
    """SNPs exactly w apart are in each other's window, as in ldsc's ``getBlockLefts``
    (|c_j - c_k| > w leaves out; 1100 bp and 100 bp are 1 kb apart, though 1100 / 1000 - 1
    rounds above 100 / 1000): positions 100 bp apart, --ld-wind-kb 1 against the dense sum
    over |bp_j - bp_k| <= 1000, and a window 1 bp narrower differs. M_5_50 counts MAF > 0.05
    exactly: a MAF of exactly 0.05 (20 copies in 2N = 400) is not counted whichever allele is
    the minor one, 21 copies are."""
    from bed_reader import to_bed

    rng = np.random.default_rng(7)
    N, P = 200, 60
    G = rng.binomial(1, 0.3, (N, P)) + rng.binomial(1, 0.3, (N, P))
    G[:, 1::2] = np.where(rng.random((N, P // 2)) < 0.8, G[:, 0::2], G[:, 1::2])  # LD
    for j, hom, het in ((30, 2, 20), (31, 0, 20), (32, 2, 21), (33, 0, 21)):
        G[:, j] = hom
        G[rng.choice(N, het, replace=False), j] = 1
    pos = np.arange(1, P + 1) * 100
    to_bed(str(tmp_path / "e.bed"), G.astype(np.float32), properties={
        "chromosome": np.repeat("1", P), "bp_position": pos})
    Z = (G - G.mean(0)) / G.std(0)
    r2 = (Z.T @ Z / N) ** 2
    r2 = r2 - (1 - r2) / (N - 2)
    d = np.abs(pos[:, None] - pos[None, :])
    ld = ld_scores(str(tmp_path / "e"), 1, "kb", block_size=7, progress=False)
    np.testing.assert_allclose(ld.table["L2"], (r2 * (d <= 1000)).sum(1), rtol=0, atol=1e-10)
    narrower = ld_scores(str(tmp_path / "e"), 0.999, "kb", progress=False).table["L2"]
    np.testing.assert_allclose(narrower, (r2 * (d < 1000)).sum(1), rtol=0, atol=1e-10)
    assert np.abs(narrower - ld.table["L2"]).max() > 1e-2
    maf = np.minimum(G.mean(0) / 2, 1 - G.mean(0) / 2)
    assert np.sum(np.isclose(maf, 0.05)) == 2
    assert ld.M == P and ld.M_5_50 == np.sum(maf > 0.05 + 1e-12) == P - 2


def test_refusals(bim, tmp_path, capsys):
    """A negative window, a cM window on a .bim without a map and unsorted positions are
    one-line errors; the same inputs with a valid window are accepted (above)."""
    ds = read_plink(DEMO.bfile)
    with pytest.raises(InputError, match="window"):
        ld_scores(ds, -1.0, "kb")
    with pytest.raises(InputError, match="genetic map"):
        ld_scores(ds, 1.0, "cm")
    shuffled = ds.isel(variant=np.r_[1, 0, 2:ds.sizes["variant"]])
    with pytest.raises(InputError, match="not sorted"):
        ld_scores(shuffled, 10.0, "kb")
    assert ld_scores(shuffled, 10.0, "snps", progress=False).M == ds.sizes["variant"]
    with pytest.raises(SystemExit) as e:
        main(["ldscore", "--bfile", str(DEMO.bfile), "--ld-wind-cm", "1", "--out",
              str(tmp_path / "o"), "--quiet"])
    assert e.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("bayeslmm: error: "
                                                                       "--ld-wind-cm")
    assert not list(tmp_path.iterdir())
