"""One .hsq writer for every fit, one number format: each number on every line is what
fmt_number gives for the fit's value, and single-value rows carry no SE column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.errors import InputError
from bayeslmm.reports.hsq import fmt_number, hsq_rows, hsq_text

from helpers import simulate, simulate_two


def _lines_match_rows(fit, **kw):
    text = hsq_text(fit, **kw)
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "Source\tVariance\tSE"
    rows = hsq_rows(fit, **kw)
    assert len(lines) == len(rows) + 1
    for line, (name, value, se) in zip(lines[1:], rows, strict=True):
        if name is None:
            assert line == value  # GCTA's explanatory line
            continue
        cells = line.split("\t")
        assert cells[0] == name
        if name in ("df", "n"):
            assert cells[1:] == [str(int(value))]
        elif se is None:
            assert cells[1:] == [fmt_number(value)]
        else:
            assert cells[1:] == [fmt_number(value), fmt_number(se)]
    return text


def test_one_trait_one_kernel_and_liability_rows():
    y, K, X = simulate(N=200, seed=3)[:3]
    fit = bayeslmm.reml(y, K, X)
    text = _lines_match_rows(fit)
    assert "logL\t" in text and "V(G)/Vp\t" in text
    yb = (y > np.median(y)).astype(float)
    fb = bayeslmm.reml(yb, K, X)
    text = _lines_match_rows(fb, prevalence=0.1)
    assert "V(G)/Vp_L\t" in text and "User-specified disease prevalence = 0.100000" in text


def test_several_kernels():
    y, K, X, Z = simulate(N=200, seed=4)[:4]
    K2 = Z[:, :100] @ Z[:, :100].T / 100
    fit = bayeslmm.reml(y, [K, K2], X)
    text = _lines_match_rows(fit)
    assert "Sum of V(G)/Vp\t" in text


def test_two_traits_gcta_bivar_rows():
    Y, K, X, _ = simulate_two(N=150, seed=2)
    fit = bayeslmm.multitrait_reml(pd.DataFrame(Y, columns=["a", "b"]), K, X)
    text = _lines_match_rows(fit)
    names = [ln.split("\t")[0] for ln in text.splitlines()[1:]]
    assert names[:11] == ["V(G)_tr1", "V(G)_tr2", "C(G)_tr12", "V(e)_tr1", "V(e)_tr2",
                          "C(e)_tr12", "Vp_tr1", "Vp_tr2", "V(G)/Vp_tr1", "V(G)/Vp_tr2", "rG"]
    # both directions: the liability scale is for one trait
    with pytest.raises(InputError, match="one trait"):
        hsq_text(fit, prevalence=0.1)


def test_numbers_tiny_and_huge_in_scientific_notation():
    assert fmt_number(0.5) == "0.500000"
    assert fmt_number(1.5e-9) == "1.500000e-09"
    assert fmt_number(3e12) == "3.000000e+12"
    assert fmt_number(float("nan")) == "nan"
