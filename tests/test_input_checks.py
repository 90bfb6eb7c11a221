"""API inputs refused at the door with one clear error (issue 22): a non-numeric formula
response, and FID/IID pairs whose joined label would collide."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.data import align_samples
from bayeslmm.errors import AlignmentError, InputError


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(3)
    N = 40
    Z = rng.standard_normal((N, 60))
    ids = [f"s{i}" for i in range(N)]
    K = pd.DataFrame(Z @ Z.T / 60, index=ids, columns=ids)
    df = pd.DataFrame({"y": Z @ rng.normal(0, 0.15, 60) + rng.standard_normal(N),
                       "sex": rng.choice(["F", "M"], N),
                       "case": rng.random(N) > 0.5}, index=ids)
    df["sex_cat"] = pd.Categorical(df["sex"])
    return df, K


@pytest.mark.parametrize("response", ["sex", "sex_cat"])
def test_text_response_is_one_clear_error(frame, response):
    df, K = frame
    with pytest.raises(InputError, match=rf"^the response '{response}' is not numeric"):
        bayeslmm.fit(f"{response} ~ 1 + (1 | grm)", df, kernels={"grm": K})
    with pytest.raises(InputError, match="is not numeric"):
        bayeslmm.formula.design(f"{response} ~ 1 + (1 | grm)", df, kernels={"grm": K})


def test_numeric_and_boolean_responses_are_accepted(frame):
    """The accepted direction: a bool response is the 0/1 trait, fitted as that column."""
    df, K = frame
    fit = bayeslmm.fit("case ~ 1 + (1 | grm)", df, kernels={"grm": K})
    ref = bayeslmm.reml(df["case"].astype(float), K)
    assert fit.h2 == pytest.approx(ref.h2, abs=1e-8)
    assert bayeslmm.fit("y ~ sex + (1 | grm)", df, kernels={"grm": K}).N == len(df)


def test_fid_iid_join_cannot_collide():
    """('a b', 'c') and ('a', 'b c') both join to 'a b c': refused, naming the ID, rather
    than matched; whitespace-free pairs that differ only in where the split is align apart."""
    a = pd.Series([1.0, 2.0, 3.0], index=pd.MultiIndex.from_tuples(
        [("a b", "c"), ("x", "y"), ("z", "w")]))
    b = pd.Series([1.0, 2.0, 5.0], index=pd.MultiIndex.from_tuples(
        [("a", "b c"), ("x", "y"), ("z", "w")]))
    with pytest.raises(AlignmentError, match=r"sample ID \('a b', 'c'\) contains whitespace"):
        align_samples({"pheno": a, "covar": b})
    # the other direction: ('ab', 'c') and ('a', 'bc') are different samples, kept apart
    a = pd.Series([1.0, 2.0, 3.0], index=pd.MultiIndex.from_tuples(
        [("ab", "c"), ("x", "y"), ("z", "w")]))
    b = pd.Series([1.0, 2.0, 5.0], index=pd.MultiIndex.from_tuples(
        [("a", "bc"), ("x", "y"), ("z", "w")]))
    out = align_samples({"pheno": a, "covar": b})
    assert out.N == 2 and list(out.ids["iid"]) == ["y", "w"]
