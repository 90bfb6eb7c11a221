"""load_inputs: files (or labelled objects) -> aligned, validated inputs, as the command line
reads them. The references align by hand (pandas on (FID, IID) pairs), not through the
package's alignment."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.datasets import load_demo
from bayeslmm.errors import InputError
from bayeslmm.genotypes import grm
from bayeslmm.inputs import load_inputs
from bayeslmm.io import read_grm, read_phenotype, write_grm

from helpers import run_cli

DEMO = load_demo()


@pytest.fixture(scope="module")
def grm_prefix(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    write_grm(grm(DEMO.bfile), d / "k")
    return d / "k"


def _by_hand(y: pd.Series, K) -> tuple[pd.Series, np.ndarray]:
    """The phenotype's non-missing samples that the GRM holds, in the GRM's order (the first
    input's, as GCTA), and the GRM restricted to them."""
    pos = {(f, i): j for j, (f, i) in enumerate(zip(K.ids["fid"], K.ids["iid"], strict=True))}
    y = y.dropna()
    y = y[[t in pos for t in y.index]]
    y = y.iloc[np.argsort([pos[t] for t in y.index])]
    idx = np.array([pos[t] for t in y.index])
    return y, K.values[np.ix_(idx, idx)]


def test_files_are_read_aligned_and_missing_values_dropped(grm_prefix, caplog):
    with caplog.at_level(logging.INFO, logger="bayeslmm"):
        inp = load_inputs(DEMO.pheno, grm=grm_prefix)
    y_ref, K_ref = _by_hand(read_phenotype(DEMO.pheno), read_grm(grm_prefix))
    assert list(inp.y.index) == list(y_ref.index)
    np.testing.assert_array_equal(inp.y.to_numpy(), y_ref.to_numpy())
    np.testing.assert_array_equal(np.asarray(inp.K), K_ref)
    assert list(inp.X.columns) == ["intercept"] and inp.names == ["G"]
    assert "5 dropped for missing values" in caplog.text


def test_labelled_objects_and_a_grm_larger_than_the_phenotype(grm_prefix, tmp_path, caplog):
    """A phenotype Series (fewer samples, another order, missing values) and a GRM object
    holding every genotyped sample: aligned by label, the missing values dropped and
    counted; the same fit as the matrices aligned by hand."""
    K = read_grm(grm_prefix)
    y = read_phenotype(DEMO.pheno).sample(frac=0.7, random_state=1)
    y.iloc[:3] = np.nan
    with caplog.at_level(logging.INFO, logger="bayeslmm"):
        inp = load_inputs(y, grm=K)
    y_ref, K_ref = _by_hand(y, K)
    assert list(inp.y.index) == list(y_ref.index)
    np.testing.assert_array_equal(np.asarray(inp.K), K_ref)
    fit = bayeslmm.reml(inp.y, inp.K, inp.X)
    ref = bayeslmm.reml(y_ref.to_numpy(), K_ref)
    np.testing.assert_allclose(fit.h2, ref.h2, rtol=1e-10)
    assert "dropped for missing values" in caplog.text


def test_keep_remove_apply_with_a_grm(grm_prefix, tmp_path):
    y = read_phenotype(DEMO.pheno).dropna()
    keep = tmp_path / "keep.txt"
    keep.write_text("".join(f"{f} {i}\n" for f, i in y.index[:50]))
    remove = tmp_path / "remove.txt"
    remove.write_text("".join(f"{f} {i}\n" for f, i in y.index[:10]))
    inp = load_inputs(DEMO.pheno, grm=grm_prefix, keep=keep, remove=remove)
    assert list(inp.y.index) == list(y.index[10:50])


def test_case_control_recoding_both_directions(grm_prefix, tmp_path):
    y = read_phenotype(DEMO.pheno).dropna()
    coded = pd.Series(np.where(y > y.median(), 2.0, 1.0), index=y.index)  # PLINK 1/2
    with_k = load_inputs(coded, grm=grm_prefix, prevalence=0.1)
    assert set(np.unique(with_k.y)) == {0.0, 1.0}
    without = load_inputs(coded, grm=grm_prefix)
    assert set(np.unique(without.y)) == {1.0, 2.0}
    with pytest.raises(InputError, match="prevalence K must"):
        load_inputs(coded, grm=grm_prefix, prevalence=1.5)


def test_several_traits_and_the_engine_path(grm_prefix, tmp_path):
    pheno = tmp_path / "two.phen"
    y = read_phenotype(DEMO.pheno)
    z = y * 2 + 1
    z.iloc[5:9] = np.nan
    pd.DataFrame({"y": y, "z": z}).reset_index().to_csv(pheno, sep=" ", header=False,
                                                         index=False, na_rep="NA")
    inp = load_inputs(pheno, mpheno=[1, 2], grm=grm_prefix)
    assert inp.Y.shape == (len(inp.y), 2)
    # the second trait keeps its missing values: the multi-trait fit uses complete cases
    assert inp.Y.iloc[:, 1].isna().sum() == int(z.reindex(inp.y.index).isna().sum())
    eng = load_inputs(pheno, bfile=DEMO.bfile, kernel=False)
    assert eng.K is None and eng.ds is not None and len(eng.y) == len(inp.y)
    with pytest.raises(InputError, match="PLINK fileset"):
        load_inputs(pheno, grm=grm_prefix, kernel=False)
    with pytest.raises(InputError, match="lists a column twice"):
        load_inputs(pheno, mpheno=[1, 1], grm=grm_prefix)


def test_the_command_line_is_load_inputs_then_the_library(grm_prefix, tmp_path):
    out = tmp_path / "r"
    assert run_cli(["reml", "--grm", str(grm_prefix), "--pheno", str(DEMO.pheno),
                    "--out", str(out), "--quiet"]) == 0
    inp = load_inputs(DEMO.pheno, grm=grm_prefix)
    fit = bayeslmm.reml(inp.y, inp.K, inp.X)
    rows = dict(ln.split("\t", 1) for ln in (tmp_path / "r.hsq").read_text().splitlines())
    assert float(rows["V(G)/Vp"].split("\t")[0]) == pytest.approx(fit.h2, abs=1e-6)
