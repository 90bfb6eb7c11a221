"""Case-control phenotypes: coding recognised (0/1, PLINK 1/2), missing codes, bad traits."""

import logging

import numpy as np
import pandas as pd
import pytest

from bayeslmm.binary import as_binary, binary_coding
from bayeslmm.errors import InputError


def test_01_coding_recognised_and_logged(caplog):
    y = pd.Series([0, 1, 1, 0, np.nan, -9, 1], index=list("abcdefg"), dtype=float)
    with caplog.at_level(logging.INFO, logger="bayeslmm.binary"):
        b = as_binary(y)
    assert b.coding == "0/1"
    assert (b.n_cases, b.n_controls, b.n_missing) == (3, 2, 2)
    assert b.case_proportion == pytest.approx(3 / 5)
    assert list(b.y.index) == list("abcdefg")
    np.testing.assert_array_equal(b.y.values, [0, 1, 1, 0, np.nan, np.nan, 1])
    assert "coded 0/1" in caplog.text and "3 cases, 2 controls" in caplog.text


def test_plink_12_coding_with_0_and_minus9_missing():
    y = np.array([1, 2, 2, 0, -9, 1, 2, np.nan])
    b = as_binary(y)
    assert b.coding == "1/2"
    np.testing.assert_array_equal(b.y, [0, 1, 1, np.nan, np.nan, 0, 1, np.nan])
    assert (b.n_cases, b.n_controls, b.n_missing) == (3, 2, 3)
    assert "1 = control, 2 = case" in b.describe()


def test_binary_coding_says_no_for_quantitative_traits():
    assert binary_coding([0.1, 0.5, 1.2]) is None
    assert binary_coding([0, 1, 2, 3]) is None
    assert binary_coding([0, 1, 1]) == "0/1"
    assert binary_coding([1, 2, 2, -9]) == "1/2"
    with pytest.raises(InputError, match="not a case-control trait"):
        as_binary([0.1, 0.5, 1.2])


@pytest.mark.parametrize("y, what", [([0, 0, 0, np.nan], "only controls"),
                                     ([2, 2, 0, -9], "no controls"),
                                     ([1, 1, 1], "only cases")])
def test_no_cases_or_no_controls_is_an_error(y, what):
    with pytest.raises(InputError, match=what):
        as_binary(y)


def test_explicit_coding_rejects_values_outside_it():
    with pytest.raises(InputError, match="value 2, .*0/1"):
        as_binary([0, 1, 2], coding="0/1")
    with pytest.raises(InputError, match="coding must be"):
        as_binary([0, 1], coding="yes/no")
    # explicit 1/2: 0 is missing, not a control
    b = as_binary([0, 1, 2, 2], coding="1/2")
    assert (b.n_cases, b.n_controls, b.n_missing) == (2, 1, 1)
