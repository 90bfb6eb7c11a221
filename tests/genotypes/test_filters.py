"""PLINK/GCTA sample and SNP filters (bayeslmm.genotypes.filters and the CLI flags).

Counts are checked against a brute-force computation on the loaded genotype matrix, and the
filtered GRM and the removal counts against plink1.9 run with the same flags."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bayeslmm.cli.app import main
from bayeslmm.datasets import load_demo
from bayeslmm.errors import FileFormatError, InputError
from bayeslmm.genotypes.filters import (
    filter_samples,
    filter_variants,
    read_sample_list,
    read_variant_list,
    sample_mask,
)
from bayeslmm.io import read_grm, read_plink

DEMO = load_demo()


@pytest.fixture(scope="module")
def ds():
    return read_plink(DEMO.bfile, load=True)


@pytest.fixture(scope="module")
def lists(tmp_path_factory, ds):
    d = tmp_path_factory.mktemp("lists")
    fid, iid = ds["fid"].to_numpy(), ds["iid"].to_numpy()
    # keep 300 samples (with a third column, a duplicate and an unknown ID), remove 20 of them
    keep = [f"{fid[i]} {iid[i]} extra" for i in range(300)] + [f"{fid[0]} {iid[0]}", "X Y"]
    (d / "keep.txt").write_text("\n".join(keep) + "\n")
    (d / "remove.txt").write_text("".join(f"{fid[i]}\t{iid[i]}\n" for i in range(280, 300)))
    snp = ds["snp"].to_numpy()
    (d / "extract.txt").write_text("\ufeff" + "\n".join([*snp[:2500], "rsNOPE"]) + "\n")
    (d / "exclude.txt").write_text("\n".join(f"{s} 1 2" for s in snp[:100]) + "\n")
    return d


def test_read_lists(lists, tmp_path):
    mi = read_sample_list(lists / "keep.txt")
    assert len(mi) == 301 and mi[0] == ("FAM001", "FAM001_P1")  # duplicate dropped
    ids = read_variant_list(lists / "extract.txt")
    assert ids[0] == "rs1_10000" and len(ids) == 2501  # byte-order mark removed
    (tmp_path / "one.txt").write_text("FAM001\n")
    with pytest.raises(FileFormatError, match="line 1: expected FID and IID"):
        read_sample_list(tmp_path / "one.txt")
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(FileFormatError, match="lists no SNP"):
        read_variant_list(tmp_path / "empty.txt")


def test_filter_counts_equal_brute_force(ds, lists):
    sub, steps = filter_samples(ds, keep=lists / "keep.txt", remove=lists / "remove.txt")
    assert [(s.flag, s.n_before, s.n_removed) for s in steps] == [
        ("--keep", 400, 100), ("--remove", 300, 20)]
    assert "1 of the 301 listed IDs not found" in str(steps[0])
    assert sub.sizes["sample"] == 280
    maf, geno = 0.1, 0.004
    out, steps = filter_variants(sub, extract=lists / "extract.txt",
                                 exclude=lists / "exclude.txt", chromosomes=["1", "2"],
                                 maf=maf, geno=geno)
    # brute force on the dense matrix of the kept samples
    G = sub["genotype"].to_numpy()
    snp = sub["snp"].to_numpy()
    m = np.isin(snp, snp[:2500]) & ~np.isin(snp, snp[:100])
    m &= np.isin(sub["chrom"].to_numpy(), ["1", "2"])
    miss = np.isnan(G).mean(axis=0)
    p = np.nanmean(G, axis=0) / 2
    m_geno = m & (miss <= geno)
    m_maf = m_geno & (np.minimum(p, 1 - p) >= maf)
    assert [(s.flag, s.n_removed) for s in steps] == [
        ("--extract", 500), ("--exclude", 100), ("--chr 1 2", 500),
        ("--geno 0.004", int((m & ~m_geno).sum())), ("--maf 0.1", int((m_geno & ~m_maf).sum()))]
    assert steps[3].n_removed > 0 and steps[4].n_removed > 0  # both filters do something
    np.testing.assert_array_equal(out["snp"].to_numpy(), snp[m_maf])


def test_filter_errors(ds):
    with pytest.raises(InputError, match="not in the genotype data"):
        filter_variants(ds, chromosomes=["22"])
    one = ds["snp"].to_numpy()[:1]
    with pytest.raises(InputError, match="no SNP left"):
        filter_variants(ds, extract=one, exclude=one)
    with pytest.raises(InputError, match="maf must be"):
        filter_variants(ds, maf=0.7)
    none = ds["sample"].to_numpy()[:0]
    import pandas as pd

    with pytest.raises(InputError, match="no sample left"):
        filter_samples(ds, keep=pd.MultiIndex.from_arrays([["X"], ["Y"]]))
    mask, steps = sample_mask(pd.MultiIndex.from_arrays([["a", "b"], ["1", "2"]]))
    assert mask.all() and steps == [] and len(none) == 0


@pytest.mark.peer
def test_cli_filters_equal_plink19(lists, tmp_path):
    plink = shutil.which("plink1.9")
    if plink is None:
        pytest.skip("plink1.9 not installed")
    flags = ["--keep", str(lists / "keep.txt"), "--remove", str(lists / "remove.txt"),
             "--extract", str(lists / "extract.txt"), "--exclude", str(lists / "exclude.txt"),
             "--chr", "1", "2", "--geno", "0.004", "--maf", "0.1"]
    assert main(["grm", "--bfile", str(DEMO.bfile), *flags, "--out", str(tmp_path / "ours"),
                 "--quiet"]) == 0
    # PLINK's --chr takes "1,2"; --nonfounders: frequencies from all samples, as ours.
    pf = [f if f != "1" else "1,2" for f in flags if f != "2"]
    subprocess.run([plink, "--bfile", str(DEMO.bfile), *pf, "--nonfounders",
                    "--make-grm-bin", "--out", str(tmp_path / "plink")], check=True,
                   capture_output=True)
    ours, theirs = read_grm(tmp_path / "ours"), read_grm(tmp_path / "plink")
    assert ours.ids.equals(theirs.ids) and ours.N == 280
    np.testing.assert_allclose(ours.values, theirs.values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ours.n_snps, theirs.n_snps)
    # the removal counts in our log equal plink's
    plog = (tmp_path / "plink.log").read_text()
    olog = (tmp_path / "ours.log").read_text()
    n_geno = int(re.search(r"(\d+) variants? removed due to missing genotype", plog)[1])
    n_maf = int(re.search(r"(\d+) variants? removed due to minor allele", plog)[1])
    assert f"--geno 0.004: removed {n_geno} of" in olog
    assert f"--maf 0.1: removed {n_maf} of" in olog
    assert "--keep: removed 100 of 400 samples" in olog


def test_keep_remove_with_a_grm_restrict_the_phenotype(lists, tmp_path):
    assert main(["grm", "--bfile", str(DEMO.bfile), "--out", str(tmp_path / "g"),
                 "--quiet"]) == 0
    assert main(["reml", "--grm", str(tmp_path / "g"), "--pheno", str(DEMO.pheno), "--keep",
                 str(lists / "keep.txt"), "--remove", str(lists / "remove.txt"), "--out",
                 str(tmp_path / "r"), "--quiet"]) == 0
    hsq = dict(ln.split("\t", 1) for ln in Path(f"{tmp_path}/r.hsq").read_text().splitlines())
    y_ids = read_sample_list(lists / "keep.txt")[:300][:280]
    from bayeslmm.io import read_phenotype

    y = read_phenotype(DEMO.pheno)
    n_expected = int(y.loc[y.index.isin(y_ids)].notna().sum())
    assert int(hsq["n"]) == n_expected
    log = Path(f"{tmp_path}/r.log").read_text()
    assert "--keep: removed 100 of 400 samples" in log


def test_every_genotype_command_takes_the_filters():
    from bayeslmm.cli.app import build_parser

    p = build_parser()
    for cmd in ("grm", "reml", "blup", "assoc", "sample", "compare", "sensitivity"):
        args = p.parse_args([cmd, "--bfile", "x", "--pheno", "y", "--keep", "k", "--remove",
                             "r", "--extract", "e", "--exclude", "x"]
                            if cmd != "grm" else [cmd, "--bfile", "x", "--keep", "k"])
        assert args.keep == "k"


def test_chr_takes_plink_ranges_lists_and_aliases():
    """PLINK's --chr syntax: ranges (1-10), comma lists, 'chr' prefixes and X = 23; every
    form selects exactly the SNPs the plain list selects. A chromosome named on its own
    that the data lack, or a range with none of them, is an error naming what the data
    have (plain codes, natural order)."""
    from bayeslmm.genotypes.kinship import chromosome_mask

    chrom = np.array(["1", "2", "3", "10", "11", "X", "23", "MT"])
    want = np.isin(chrom, ["1", "2", "3", "10"])
    for spec in (["1-3", "10"], ["1-3,10"], ["chr1-3", "chr10"], ["1", "2", "3", "10"],
                 ["1-4", "10"], ["0-3", "10"]):
        np.testing.assert_array_equal(chromosome_mask(chrom, spec), want, err_msg=str(spec))
    np.testing.assert_array_equal(chromosome_mask(chrom, ["X"]), np.isin(chrom, ["X", "23"]))
    np.testing.assert_array_equal(chromosome_mask(chrom, ["22-23"]),
                                  np.isin(chrom, ["X", "23"]))
    np.testing.assert_array_equal(chromosome_mask(chrom, ["26"]), chrom == "MT")
    with pytest.raises(InputError, match=r"chromosome 5 is not .*it has 1 2 3 10 11 23 MT X\)"):
        chromosome_mask(chrom, ["1", "5"])
    with pytest.raises(InputError, match="--chr 4-9: none of these"):
        chromosome_mask(chrom, ["4-9"])


def test_cli_chr_range_equals_the_list(tmp_path):
    """`grm --chr 1-2` writes the GRM that `--chr 1 2` writes."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["grm", "--bfile", str(DEMO.bfile), "--chr", "1-2", "--out", str(a),
                 "--quiet"]) == 0
    assert main(["grm", "--bfile", str(DEMO.bfile), "--chr", "1", "2", "--out", str(b),
                 "--quiet"]) == 0
    ga, gb = read_grm(a), read_grm(b)
    np.testing.assert_array_equal(ga.values, gb.values)
    assert 0 < int(ga.n_snps.max()) < read_plink(DEMO.bfile).sizes["variant"]


def test_cli_assoc_chr_range_keeps_those_chromosomes(tmp_path):
    """`assoc --chr 1-2` tests exactly the SNPs of chromosomes 1 and 2."""
    import pandas as pd

    out = tmp_path / "a"
    assert main(["assoc", "--bfile", str(DEMO.bfile), "--pheno", str(DEMO.pheno), "--chr",
                 "1-2", "--out", str(out), "--quiet"]) == 0
    res = pd.read_csv(f"{out}.assoc.tsv", sep="\t", dtype={"chrom": str})
    bim = read_plink(DEMO.bfile)
    want = np.isin(bim["chrom"].to_numpy().astype(str), ["1", "2"])
    assert sorted(res["chrom"].unique()) == ["1", "2"] and len(res) == int(want.sum())
