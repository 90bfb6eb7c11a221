"""A formula interface over data frames: ``bayeslmm.fit("height ~ age + sex + (1 | grm)
+ (1 | cage)", data=df, kernels={"grm": K})``.

The fixed part (left of the random terms) is parsed and materialised by ``formulae``, the
formula library bambi uses: numeric columns enter as they are, categorical columns are
dummy-coded against a reference level (the first level, as R and bambi do; stated in
:attr:`FormulaDesign.reference_levels`), ``C(x)``, interactions and transformations work as
in bambi. Each random term ``(1 | name)`` adds a variance component (notes eq. 43-46):

* ``name`` in ``kernels``: a relationship matrix (GRM or any PSD kernel) labelled by sample,
  a :class:`pandas.DataFrame` whose index (and columns) are the sample IDs, or a bare array
  in the row order of ``data``;
* otherwise ``name`` must be a column of ``data``: a grouping factor, turned into its
  indicator kernel K = Z Z' (Z the N x G group indicators), so that sigma_name is the
  variance of a group's random intercept, exactly lme4's ``(1 | name)``.

Rows are identified by the column ``id`` when given, else by the index of ``data``. Rows
with a missing value in any variable of the formula, and rows whose sample is absent from a
kernel, are dropped and counted (:attr:`FormulaDesign.n_dropped`, and a log message).
Then :func:`fit` is :func:`bayeslmm.reml` (or ``ml``) and :func:`model` is
:func:`bayeslmm.models.marginal_grm` on the same arrays, so the numbers are those of the
matrix interface.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError

__all__ = ["FormulaDesign", "design", "fit", "model"]

log = logging.getLogger(__name__)

_RANDOM = re.compile(r"\(\s*1\s*\|\s*([^()|]+?)\s*\)")


@dataclass(frozen=True, eq=False)
class FormulaDesign:
    """What a formula means on a data frame: the arrays handed to the matrix interface.

    Attributes
    ----------
    y : pandas.Series
        Response, indexed by sample ID.
    X : pandas.DataFrame
        Fixed-effect design (formulae's column names, e.g. ``Intercept``, ``sex[M]``).
    kernels : dict[str, pandas.DataFrame]
        One kernel per random term, in the formula's order, labelled by sample.
    kinds : dict[str, str]
        ``"kernel"`` or ``"grouping"`` for each random term.
    reference_levels : dict[str, str]
        Reference (dropped) level of each dummy-coded categorical column.
    n_dropped : int
        Rows of ``data`` left out (missing values or not in a kernel).
    dropped_reasons : dict[str, int]
        The same count by reason.
    """

    formula: str
    response: str
    y: pd.Series = field(repr=False)
    X: pd.DataFrame = field(repr=False)
    kernels: dict[str, pd.DataFrame] = field(repr=False)
    kinds: dict[str, str]
    reference_levels: dict[str, str]
    n_dropped: int
    dropped_reasons: dict[str, int]

    @property
    def N(self) -> int:
        return int(self.y.size)

    @property
    def components(self) -> list[str]:
        return list(self.kernels)

    def describe(self) -> str:
        """One paragraph: rows used and dropped, components, reference levels."""
        parts = [f"{self.formula}: N = {self.N} rows used"]
        if self.n_dropped:
            why = ", ".join(f"{n} {r}" for r, n in self.dropped_reasons.items() if n)
            parts.append(f"{self.n_dropped} dropped ({why})")
        parts.append("random terms " + ", ".join(f"{k} ({v})" for k, v in self.kinds.items()))
        if self.reference_levels:
            parts.append("reference levels " + ", ".join(
                f"{k} = {v!r}" for k, v in self.reference_levels.items()))
        return "; ".join(parts) + "."


def _split(formula: str) -> tuple[str, list[str]]:
    """The fixed-effects formula (random terms removed) and the random terms' names."""
    if "~" not in formula:
        raise InputError(f"a formula needs a response: 'y ~ terms', got {formula!r}")
    lhs, rhs = formula.split("~", 1)
    names = [m.strip() for m in _RANDOM.findall(rhs)]
    rest = _RANDOM.sub(" ", rhs)
    if "|" in rest:
        raise InputError(f"only random intercepts '(1 | name)' are supported; cannot read "
                         f"{rest.strip()!r} in {formula!r}")
    terms = [t.strip() for t in rest.split("+")]
    # Keep '-1' / '0' and other terms; drop the empty ones the random terms left behind.
    fixed_rhs = " + ".join(t for t in terms if t) or "1"
    if len(set(names)) != len(names):
        raise InputError(f"a random term is repeated in {formula!r}")
    return f"{lhs.strip()} ~ {fixed_rhs}", names


def _sample_ids(data: pd.DataFrame, id: str | None) -> pd.Index:
    if id is None:
        ids = data.index.map(str)
    else:
        if id not in data.columns:
            raise InputError(f"id column {id!r} is not in the data (columns: "
                             f"{', '.join(map(str, data.columns[:10]))})")
        ids = pd.Index(data[id].astype(str))
    if ids.has_duplicates:
        raise InputError(f"sample IDs ({'index' if id is None else id!r}) must be unique; "
                         f"{ids[ids.duplicated()][0]!r} repeats")
    return pd.Index(ids)


def _kernel_frame(name: str, K, ids: pd.Index) -> pd.DataFrame:
    """A kernel as a DataFrame labelled by sample ID (a bare array takes data's row order)."""
    if isinstance(K, pd.DataFrame):
        K = K.copy()
        K.index = K.index.map(str)
        K.columns = K.columns.map(str)
        if not K.index.equals(K.columns):
            raise InputError(f"kernel {name!r}: its index and columns must be the same "
                             "sample IDs in the same order")
        return K
    arr = np.asarray(K, dtype=np.float64)
    if arr.ndim != 2 or arr.shape != (len(ids), len(ids)):
        raise InputError(f"kernel {name!r} is a bare array of shape {arr.shape}; give a "
                         f"DataFrame labelled by sample ID, or an array in the order of the "
                         f"{len(ids)} rows of data")
    return pd.DataFrame(arr, index=ids, columns=ids)


def _check_response(df: pd.DataFrame, response: str, names: set[str]) -> None:
    """Refuse a response that is not numbers: formulae would dummy-code a text column into
    one column per level, which is not one phenotype (a case-control trait is coded 0/1 or
    fitted with the threshold model)."""
    for v in sorted(names & set(df.columns)):
        col = df[v]
        if not pd.api.types.is_numeric_dtype(col):  # bool counts as numeric: 0/1
            levels = ", ".join(map(repr, pd.unique(col.astype(str))[:3]))
            raise InputError(f"the response {response!r} is not numeric (column {v!r} holds "
                             f"{col.dtype} values such as {levels}); code it as numbers, "
                             "e.g. 0/1 for a case-control trait")


def design(formula: str, data: pd.DataFrame, kernels: Mapping[str, Any] | None = None, *,
           id: str | None = None) -> FormulaDesign:
    """Read ``formula`` on ``data`` (see the module docstring).

    Parameters
    ----------
    formula : str
        ``"y ~ fixed terms + (1 | name) + ..."``.
    data : pandas.DataFrame
    kernels : dict of str -> DataFrame or array, optional
        Relationship matrices named in the formula.
    id : str, optional
        Column of sample IDs (default: the index of ``data``).

    Returns
    -------
    FormulaDesign
    """
    import formulae

    if not isinstance(data, pd.DataFrame):
        raise InputError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    kernels = dict(kernels or {})
    fixed, names = _split(formula)
    if not names:
        raise InputError(f"{formula!r} has no random term: add '(1 | name)' naming a kernel "
                         "or a grouping column (for a model without one use bayeslmm.ols)")
    unknown = [n for n in kernels if n not in names]
    if unknown:
        raise InputError(f"kernels {unknown} are not in the formula's random terms {names}")
    ids = _sample_ids(data, id)
    try:
        desc = formulae.model_description(fixed)
    except Exception as err:  # formulae raises its own parse errors
        raise InputError(f"cannot parse the fixed part {fixed!r}: {err}") from None
    response = desc.response.term.name if desc.response is not None else None
    if response is None:
        raise InputError(f"{formula!r} has no response left of '~'")
    variables = set(desc.var_names)
    response_vars = set(getattr(desc.response.term, "var_names", ()) or ())
    kinds = {n: ("kernel" if n in kernels else "grouping") for n in names}
    groups = [n for n in names if kinds[n] == "grouping"]
    missing_cols = [v for v in sorted(variables | set(groups)) if v not in data.columns]
    if missing_cols:
        what = [m for m in missing_cols if m in groups]
        hint = (f"; random terms {what} name neither a kernel (kernels=) nor a column"
                if what else "")
        raise InputError(f"columns {missing_cols} are not in the data{hint}")
    df = data.copy()
    df.index = ids
    used = sorted(variables | set(groups))
    na = df[used].isna().any(axis=1)
    frames = {n: _kernel_frame(n, kernels[n], ids) for n in names if kinds[n] == "kernel"}
    in_kernels = pd.Series(True, index=ids)
    for K in frames.values():
        in_kernels &= ids.isin(K.index)
    keep = ~na & in_kernels
    reasons = {"with missing values": int(na.sum()),
               "not in a kernel": int((~na & ~in_kernels).sum())}
    df = df.loc[keep]
    _check_response(df, response, response_vars)
    if len(df) < 3:
        raise InputError(f"only {len(df)} rows left after dropping missing values and samples "
                         "absent from the kernels")
    dm = formulae.design_matrices(fixed, df, na_action="error")
    common = dm.common
    labels: list[str] = []
    refs: dict[str, str] = {}
    for term in common.terms.values():
        labels.extend(term.labels)
        for comp in getattr(term, "components", []):
            if getattr(comp, "kind", None) == "categoric" and getattr(comp, "levels", None):
                kept = set(getattr(term, "levels", None) or [])
                dropped = [str(lv) for lv in comp.levels if str(lv) not in kept]
                if len(dropped) == 1:
                    refs[comp.name] = dropped[0]
    X = pd.DataFrame(np.asarray(common.design_matrix).astype(np.float64), index=df.index,
                     columns=labels)
    y = pd.Series(np.asarray(dm.response.design_matrix).astype(np.float64).reshape(-1),
                  index=df.index, name=response)
    out_kernels: dict[str, pd.DataFrame] = {}
    for n in names:
        if kinds[n] == "kernel":
            out_kernels[n] = frames[n].loc[df.index, df.index]
        else:
            g = df[n].astype(str).to_numpy()
            out_kernels[n] = pd.DataFrame((g[:, None] == g[None, :]).astype(np.float64),
                                          index=df.index, columns=df.index)
    res = FormulaDesign(formula, response, y, X, out_kernels, kinds, refs,
                        int((~keep).sum()), reasons)
    log.info("%s", res.describe())
    return res


def _matrix_args(d: FormulaDesign):
    Ks = list(d.kernels.values())
    K = Ks[0] if len(Ks) == 1 else Ks
    kw = {} if len(Ks) == 1 else {"component_names": d.components}
    return K, kw


def fit(formula: str, data: pd.DataFrame, kernels: Mapping[str, Any] | None = None, *,
        id: str | None = None, ml: bool = False, **options):
    """REML (or ML) fit of a formula: :func:`bayeslmm.reml` on :func:`design`'s arrays.

    Examples
    --------
    >>> import numpy as np, pandas as pd, bayeslmm
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"y": rng.standard_normal(60), "sex": rng.choice(["F", "M"], 60),
    ...                    "cage": rng.integers(0, 10, 60)})
    >>> fit = bayeslmm.fit("y ~ sex + (1 | cage)", data=df)
    >>> list(fit.beta.index)
    ['Intercept', 'sex[M]']
    """
    from bayeslmm.estimation.reml import ml as ml_fit
    from bayeslmm.estimation.reml import reml

    d = design(formula, data, kernels, id=id)
    K, kw = _matrix_args(d)
    return (ml_fit if ml else reml)(d.y, K, d.X, **kw, **options)


def model(formula: str, data: pd.DataFrame, kernels: Mapping[str, Any] | None = None, *,
          id: str | None = None, priors: Mapping[str, Any] | None = None, dirichlet=None,
          **options):
    """The PyMC marginal model of a formula (:func:`bayeslmm.models.marginal_grm`, or with
    ``dirichlet`` the several-kernel model with a Dirichlet prior on the variance
    proportions); sample it with :func:`bayeslmm.sample`."""
    from bayeslmm.bayes.models.marginal import marginal_grm
    from bayeslmm.bayes.models.multikernel import marginal_multikernel

    d = design(formula, data, kernels, id=id)
    K, kw = _matrix_args(d)
    if dirichlet is not None:
        return marginal_multikernel(d.y, list(d.kernels.values()), d.X, priors=priors,
                                    dirichlet=dirichlet, component_names=d.components)
    return marginal_grm(d.y, K, d.X, priors=priors, **kw, **options)
