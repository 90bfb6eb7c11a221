"""The held-out check of the genotype formats (issue 26): GEMMA's mouse fileset converted by
plink2 (the peer) to .pgen, 8-bit BGEN and bgzipped VCF; `grm` through --pfile, --bgen/--sample
and --vcf equals the .bed's, and `reml` on phenotype 1 (the .fam's sixth column) gives the same
.hsq. plink2 drops the 1,926 variants with a negative bp position, so the .bed side is read
with PLINK's rule, --exclude-negative-pos (10,300 variants)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plink2_files import convert

from bayeslmm.io import read_grm

from helpers import run_cli

pytestmark = [pytest.mark.slow, pytest.mark.peer, pytest.mark.xdist_group("mouse_formats")]

FLAGS = {
    "bed": lambda bfile, c: ["--bfile", str(bfile), "--exclude-negative-pos"],
    "pgen": lambda bfile, c: ["--pfile", str(c["pfile"])],
    "bgen": lambda bfile, c: ["--bgen", str(c["bgen"]), "ref-last", "--sample",
                              str(c["sample"])],
    "vcf": lambda bfile, c: ["--vcf", str(c["vcf"]), "--id-delim", "-"],
}


@pytest.fixture(scope="module")
def runs(mouse_bfile, tmp_path_factory):
    d = tmp_path_factory.mktemp("mouse_formats")
    conv = convert(mouse_bfile, d / "conv")
    fam = f"{mouse_bfile}.fam"
    for name, flags in FLAGS.items():
        src = flags(mouse_bfile, conv)
        assert run_cli(["grm", *src, "--out", str(d / name), "--quiet"]) == 0
        assert run_cli(["reml", "--grm", str(d / name), "--pheno", fam, "--out",
                        str(d / f"r_{name}"), "--quiet"]) == 0
    return d


@pytest.mark.parametrize("fmt", ["pgen", "bgen", "vcf"])
def test_grm_and_reml_equal_the_bed(runs, fmt):
    ref, other = read_grm(runs / "bed"), read_grm(runs / fmt)
    assert ref.ids.equals(other.ids) and int(ref.n_snps.max()) == 10300
    np.testing.assert_allclose(np.asarray(other.values), np.asarray(ref.values), atol=1e-5)
    np.testing.assert_array_equal(other.n_snps, ref.n_snps)
    hsq = {k: pd.read_csv(runs / f"r_{k}.hsq", sep="\t", index_col=0) for k in ("bed", fmt)}
    np.testing.assert_allclose(hsq[fmt]["Variance"], hsq["bed"]["Variance"], rtol=1e-6)
