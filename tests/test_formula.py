"""The formula interface: same numbers as the matrix interface, dummy coding with a stated
reference level, missing rows dropped and counted, one-line errors; and lme4's crossed random
effects on Penicillin (plate and sample) as the peer for the REML variance components."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayeslmm
from bayeslmm.errors import InputError
from bayeslmm.formula import design

from peers import require_tool, run


def _frame(N: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [f"id{i}" for i in range(N)]
    Z = rng.standard_normal((N, 300))
    K = Z @ Z.T / 300
    cage = rng.integers(0, 15, N)
    sex = rng.choice(["F", "M"], N)
    age = rng.uniform(20, 60, N)
    Kc = (cage[:, None] == cage[None, :]).astype(float)
    V = 0.4 * K + 0.3 * Kc + 0.5 * np.eye(N)
    y = 1.0 + 0.02 * age + 0.5 * (sex == "M") + np.linalg.cholesky(V) @ rng.standard_normal(N)
    df = pd.DataFrame({"iid": ids, "weight": y, "age": age, "sex": sex, "cage": cage})
    df.loc[3, "age"] = np.nan
    df.loc[7, "sex"] = None
    Kdf = pd.DataFrame(K, index=ids, columns=ids)
    # The kernel lacks two phenotyped samples and comes in another order.
    keep = [i for i in ids if i not in ("id10", "id11")][::-1]
    return df, Kdf.loc[keep, keep], K, Kc


def _by_hand(df, K, Kc):
    """The same model on arrays: rows 3, 7, 10, 11 removed, sex dummy (F reference)."""
    rows = np.setdiff1d(np.arange(len(df)), [3, 7, 10, 11])
    d = df.iloc[rows]
    X = np.column_stack([np.ones(rows.size), d["age"], (d["sex"] == "M").astype(float)])
    return d["weight"].to_numpy(), X, K[np.ix_(rows, rows)], Kc[np.ix_(rows, rows)]


def test_formula_fit_equals_the_matrix_interface():
    df, Kdf, K, Kc = _frame()
    f = bayeslmm.fit("weight ~ age + sex + (1 | grm) + (1 | cage)", data=df,
                     kernels={"grm": Kdf}, id="iid")
    y, X, K2, Kc2 = _by_hand(df, K, Kc)
    ref = bayeslmm.reml(y, [K2, Kc2], X)
    np.testing.assert_allclose(f.sigma2, ref.sigma2, rtol=1e-10)
    np.testing.assert_allclose(f.beta.values, ref.beta.values, rtol=1e-10)
    assert f.loglik == pytest.approx(ref.loglik, abs=1e-9)
    assert list(f.beta.index) == ["Intercept", "age", "sex[M]"]
    assert list(f.components) == ["grm", "cage"]
    d = design("weight ~ age + sex + (1 | grm) + (1 | cage)", df, {"grm": Kdf}, id="iid")
    assert d.reference_levels == {"sex": "F"}
    assert d.n_dropped == 4
    assert d.dropped_reasons == {"with missing values": 2, "not in a kernel": 2}
    assert d.kinds == {"grm": "kernel", "cage": "grouping"}
    # One kernel: the spectral path, same numbers as reml(y, K, X).
    f1 = bayeslmm.fit("weight ~ age + sex + (1 | grm)", data=df, kernels={"grm": Kdf},
                      id="iid")
    r1 = bayeslmm.reml(y, K2, X)
    assert f1.h2 == pytest.approx(r1.h2, rel=1e-9)
    assert f1.loglik == pytest.approx(r1.loglik, abs=1e-9)


def test_formula_model_equals_the_matrix_interface():
    from bayeslmm.bayes.models.multikernel import density_of

    df, Kdf, K, Kc = _frame(N=80)
    m = bayeslmm.model("weight ~ age + sex + (1 | grm) + (1 | cage)", data=df,
                       kernels={"grm": Kdf}, id="iid")
    y, X, K2, Kc2 = _by_hand(df, K, Kc)
    ref = bayeslmm.models.marginal_grm(y, [K2, Kc2], X)
    t = np.log([0.3, 0.2, 0.5])
    assert density_of(m).logp(t) == pytest.approx(density_of(ref).logp(t), abs=1e-9)
    assert list(m.coords["component"]) == ["grm", "cage"]
    m1 = bayeslmm.model("weight ~ age + sex + (1 | grm)", data=df, kernels={"grm": Kdf},
                        id="iid")
    r1 = bayeslmm.models.marginal_grm(y, K2, X)
    from bayeslmm.bayes.compiled.marginal import compile_marginal, evaluate

    x = np.array([0.3, -0.2, 0.1, -0.4, 0.2])
    assert evaluate(compile_marginal(m1), x)[0] == pytest.approx(
        evaluate(compile_marginal(r1), x)[0], abs=1e-9)


def test_formula_errors_are_one_line():
    df, Kdf, K, Kc = _frame(N=40)
    with pytest.raises(InputError, match="needs a response"):
        bayeslmm.fit("age + (1 | cage)", data=df)
    with pytest.raises(InputError, match="no random term"):
        bayeslmm.fit("weight ~ age", data=df)
    with pytest.raises(InputError, match="name neither a kernel"):
        bayeslmm.fit("weight ~ age + (1 | litter)", data=df)
    with pytest.raises(InputError, match="only random intercepts"):
        bayeslmm.fit("weight ~ age + (age | cage)", data=df)
    with pytest.raises(InputError, match="not in the formula"):
        bayeslmm.fit("weight ~ age + (1 | cage)", data=df, kernels={"grm": Kdf})
    with pytest.raises(InputError, match="id column 'IID'"):
        bayeslmm.fit("weight ~ age + (1 | cage)", data=df, id="IID")
    with pytest.raises(InputError, match="bare array of shape"):
        bayeslmm.fit("weight ~ age + (1 | grm)", data=df, kernels={"grm": K[:5, :5]})
    with pytest.raises(InputError, match="must be unique"):
        bayeslmm.fit("weight ~ age + (1 | cage)", data=pd.concat([df, df.iloc[:1]]),
                     id="iid")


@pytest.mark.peer
def test_crossed_random_effects_match_lme4_penicillin(tmp_path):
    """diameter ~ 1 + (1 | plate) + (1 | sample), lme4's Penicillin (24 plates x 6 samples,
    crossed): REML variance components, intercept and restricted log-likelihood."""
    rscript = require_tool("Rscript")
    code = (
        "suppressMessages(library(lme4)); data(Penicillin);"
        f"write.csv(Penicillin, '{tmp_path}/pen.csv', row.names=FALSE);"
        "m <- lmer(diameter ~ 1 + (1|plate) + (1|sample), Penicillin, REML=TRUE,"
        " control=lmerControl(optimizer='bobyqa', optCtrl=list(rhobeg=1e-3, rhoend=1e-12)));"
        "vc <- as.data.frame(VarCorr(m));"
        f"write.csv(data.frame(grp=vc$grp, s=vc$vcov), '{tmp_path}/vc.csv', row.names=FALSE);"
        f"write.csv(data.frame(b=fixef(m), ll=as.numeric(logLik(m))), '{tmp_path}/b.csv',"
        " row.names=FALSE)"
    )
    run([rscript, "-e", code], cwd=tmp_path)
    data = pd.read_csv(tmp_path / "pen.csv")
    vc = pd.read_csv(tmp_path / "vc.csv").set_index("grp")["s"]
    b = pd.read_csv(tmp_path / "b.csv")
    fit = bayeslmm.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", data=data)
    ours = dict(zip(fit.components, fit.sigma2[:-1], strict=True))
    assert ours["plate"] == pytest.approx(vc["plate"], rel=1e-5)
    assert ours["sample"] == pytest.approx(vc["sample"], rel=1e-5)
    assert fit.sigma2[-1] == pytest.approx(vc["Residual"], rel=1e-5)
    assert float(fit.beta.iloc[0]) == pytest.approx(float(b["b"].iloc[0]), rel=1e-7)
    # lme4's REML criterion drops log|X'X| / 2 (ours keeps it: notes 4.3.2); X'X = N here.
    assert fit.loglik - 0.5 * np.log(len(data)) == pytest.approx(float(b["ll"].iloc[0]),
                                                                 abs=1e-5)
