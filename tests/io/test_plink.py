"""PLINK fileset reading (bed-reader) and the GRM against plink1.9 (peer)."""

from __future__ import annotations

import numpy as np
import pytest
from bed_reader import to_bed

from bayeslmm.errors import FileFormatError
from bayeslmm.genotypes.kinship import grm
from bayeslmm.io import iter_variant_blocks, read_grm, read_plink


def _synthetic(path, N=30, P=40, missing=0.1, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, P)
    G = rng.binomial(2, p, size=(N, P)).astype(float)
    G[rng.random((N, P)) < missing] = np.nan
    G[:, 3] = 2.0  # monomorphic
    G[:5, 3] = np.nan
    chrom = np.repeat(["1", "2", "3", "4"], P // 4)
    to_bed(
        path,
        G,
        properties={
            "chromosome": chrom,
            "bp_position": np.arange(1, P + 1) * 100,
            "fid": [f"f{i}" for i in range(N)],
            "iid": [f"i{i}" for i in range(N)],
        },
    )
    return G


def test_read_plink_lazy_and_loaded(tmp_path):
    G = _synthetic(tmp_path / "s.bed")
    ds = read_plink(tmp_path / "s")
    assert "genotype" not in ds and ds.sizes == {"sample": 30, "variant": 40}
    assert ds["sample"].values[0] == "f0 i0"
    for c in ("fid", "iid", "chrom", "pos", "snp", "a1", "a2"):
        assert c in ds.coords
    loaded = read_plink(tmp_path / "s.bed", load=True, block_size=7)
    np.testing.assert_array_equal(loaded["genotype"].values, G)  # A1 counted, NaN missing
    blocks = list(iter_variant_blocks(ds, block_size=7, split_by="chrom"))
    assert all(b.genotypes.shape[1] <= 7 for b in blocks)
    assert all(len(set(ds["chrom"].values[b.variants])) == 1 for b in blocks)
    got = np.concatenate([b.genotypes for b in blocks], axis=1)
    np.testing.assert_array_equal(got, G)


def test_subset_lazy_dataset_reads_right_cells(tmp_path):
    G = _synthetic(tmp_path / "s.bed")
    ds = read_plink(tmp_path / "s")
    rows, cols = np.array([5, 2, 9]), np.array([1, 30, 4, 5, 6])
    sub = ds.isel(sample=rows, variant=cols)
    got = np.concatenate([b.genotypes for b in iter_variant_blocks(sub, block_size=2)], 1)
    np.testing.assert_array_equal(got, G[np.ix_(rows, cols)])


def test_negative_bp_variants_kept_by_default_excluded_like_plink_on_request(mouse_bfile,
                                                                            caplog):
    with caplog.at_level("INFO", logger="bayeslmm.io.plink"):
        ds = read_plink(mouse_bfile, exclude_negative_pos=True)
    assert ds.sizes == {"sample": 1940, "variant": 10300}  # plink: "10300 out of 12226"
    assert ds["sample"].values[0] == "1_3 A048005080"
    assert "1926 of 12226 variants have a negative bp position and are excluded" in caplog.text
    caplog.clear()
    with caplog.at_level("INFO", logger="bayeslmm.io.plink"):
        ds = read_plink(mouse_bfile)
    assert ds.sizes["variant"] == 12226  # as GEMMA
    assert "mCV22965443" in ds["snp"].values  # GEMMA's top hit on phenotype 1 (bp -9)
    assert "1926 of 12226 variants have a negative bp position; kept" in caplog.text


def test_truncated_bed_is_a_file_format_error(tmp_path):
    _synthetic(tmp_path / "s.bed")
    data = (tmp_path / "s.bed").read_bytes()
    (tmp_path / "s.bed").write_bytes(data[:-3])
    with pytest.raises(FileFormatError, match=r"s\.bed.*truncated"):
        read_plink(tmp_path / "s")


def test_missing_fam_is_a_file_format_error(tmp_path):
    _synthetic(tmp_path / "s.bed")
    (tmp_path / "s.fam").unlink()
    with pytest.raises(FileFormatError, match=r"s\.fam.*does not exist"):
        read_plink(tmp_path / "s")


@pytest.mark.peer
def test_mouse_grm_equals_plink(mouse_bfile, plink_mouse_grm):
    """GCTA GRM of 1940 mice x 10300 SNPs == plink1.9 --make-grm-bin --nonfounders."""
    ours = grm(read_plink(mouse_bfile, exclude_negative_pos=True), block_size=2000)
    ref = read_grm(plink_mouse_grm)
    assert ours.ids.equals(ref.ids)
    assert ours.M == 10300
    np.testing.assert_allclose(ours.values, ref.values, rtol=0, atol=1e-5)
    np.testing.assert_allclose(ours.n_snps, ref.n_snps, rtol=0, atol=1e-5)


@pytest.mark.peer
def test_mouse_grm_plink_default_frequencies(mouse_bfile, plink):
    """Without --nonfounders plink has no founder here and uses p = 0.5 for every SNP;
    ``allele_freq`` reproduces that exactly."""
    plink(["--bfile", str(mouse_bfile), "--make-grm-bin", "--out", "dflt"], mouse_bfile.parent)
    ref = read_grm(mouse_bfile.parent / "dflt")
    ds = read_plink(mouse_bfile, exclude_negative_pos=True)  # plink ignores bp < 0
    ours = grm(ds, allele_freq=np.full(ds.sizes["variant"], 0.5), block_size=5000)
    np.testing.assert_allclose(ours.values, ref.values, rtol=0, atol=1e-5)


@pytest.mark.peer
@pytest.mark.parametrize(
    ("plink_args", "kw"),
    [([], {}), (["--maf", "0.15", "--geno", "0.12"], {"maf": 0.15, "geno": 0.12})],
)
def test_grm_with_missing_and_qc_equals_plink(tmp_path, plink, plink_args, kw):
    """Pairwise exclusion of missing calls, per-pair counts (.grm.N.bin), monomorphic
    SNPs and the --maf/--geno filters agree with plink1.9."""
    _synthetic(tmp_path / "s.bed", N=60, P=80, missing=0.1, seed=3)
    plink(["--bfile", "s", "--make-grm-bin", *plink_args, "--out", "p"], tmp_path)
    ref = read_grm(tmp_path / "p")
    ours = grm(tmp_path / "s", block_size=7, **kw)
    assert ours.M < 80 if kw else ours.M == 80
    np.testing.assert_allclose(ours.values, ref.values, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.n_snps, ref.n_snps)
