"""Case-control phenotypes: recognising the coding, the missing codes, the case proportion.

A binary trait arrives coded either 0/1 (control/case, GCTA's convention) or 1/2 (PLINK's
convention: 1 = control, 2 = case, with 0 and -9 meaning missing). :func:`as_binary`
recognises which, recodes to 0/1 with NaN for missing, states the coding and the counts in
the log, and refuses a trait without cases or without controls (nothing to estimate).

This module sits with :mod:`bayeslmm.data` at the bottom of the layers: it validates inputs
and knows nothing of models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayeslmm.errors import InputError

__all__ = ["BinaryPhenotype", "as_binary", "binary_coding", "check_fraction"]

log = logging.getLogger("bayeslmm.binary")

CODINGS = ("auto", "0/1", "1/2")


@dataclass(frozen=True, eq=False)
class BinaryPhenotype:
    """A case-control trait recoded to 0 (control) / 1 (case), NaN for missing.

    Attributes
    ----------
    y : pandas.Series or numpy.ndarray
        The recoded trait, labelled as the input was.
    coding : {"0/1", "1/2"}
        The coding found in the input.
    n_cases, n_controls, n_missing : int
    """

    y: pd.Series | np.ndarray
    coding: str
    n_cases: int
    n_controls: int
    n_missing: int

    @property
    def N(self) -> int:  # noqa: N802 - the notes' name
        """Non-missing samples."""
        return self.n_cases + self.n_controls

    @property
    def case_proportion(self) -> float:
        """P, the proportion of cases among the non-missing samples (Lee et al. 2011)."""
        return self.n_cases / self.N

    def describe(self) -> str:
        missing = ("-9/NA and 0" if self.coding == "1/2" else "-9/NA")
        return (f"case-control phenotype coded {self.coding} "
                f"({'1 = control, 2 = case' if self.coding == '1/2' else '0 = control, 1 = case'}"
                f"; missing: {missing}): {self.n_cases} cases, {self.n_controls} controls, "
                f"{self.n_missing} missing; case proportion P = {self.case_proportion:.6f}")


def check_fraction(value, name: str) -> float:
    """``value`` as a float strictly inside (0, 1) -- a prevalence K or a case proportion P --
    or an InputError naming it."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < v < 1.0:
        raise InputError(f"{name} must lie strictly between 0 and 1, got {v:g}")
    return v


def _values(y) -> np.ndarray:
    try:
        arr = np.asarray(y.values if hasattr(y, "values") and not isinstance(y, np.ndarray)
                         else y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the phenotype must be numeric: {exc}") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"the phenotype must be one-dimensional, got shape {arr.shape}")
    return arr


def binary_coding(y) -> str | None:
    """``"0/1"`` or ``"1/2"`` when y (NaN and -9 being missing) looks like a case-control
    trait, else None.

    The values {0, 1} are the 0/1 coding; {1, 2} and {0, 1, 2} are PLINK's 1/2 coding with 0
    missing. A trait with a single distinct value is not called binary here (see
    :func:`as_binary`, which says why it cannot be used).
    """
    arr = _values(y)
    vals = set(np.unique(arr[np.isfinite(arr) & (arr != -9.0)]).tolist())
    if vals == {0.0, 1.0}:
        return "0/1"
    if vals in ({1.0, 2.0}, {0.0, 1.0, 2.0}):
        return "1/2"
    return None


def as_binary(y, *, coding: str = "auto") -> BinaryPhenotype:
    """Recognise and recode a case-control phenotype (GCTA / PLINK conventions).

    Parameters
    ----------
    y : array_like, pandas.Series or xarray.DataArray, shape (N,)
        The trait as read; NaN and -9 are missing (as in :mod:`bayeslmm.io.phenotypes`).
    coding : {"auto", "0/1", "1/2"}
        ``"auto"`` recognises the coding from the values ({0, 1} -> 0/1; {1, 2} or
        {0, 1, 2} -> 1/2). In the 1/2 coding 0 is missing, as in PLINK.

    Returns
    -------
    BinaryPhenotype
        y recoded to 0/1 with NaN for missing; the coding and the counts are logged.

    Raises
    ------
    InputError
        When a value is outside the coding, or there are no cases or no controls.
    """
    if coding not in CODINGS:
        raise InputError(f"coding must be one of {CODINGS}, got {coding!r}")
    arr = _values(y)
    missing = ~np.isfinite(arr) | (arr == -9.0)
    present = arr[~missing]
    if coding == "auto":
        found = binary_coding(arr)
        if found is None:
            vals = np.unique(present)
            if set(vals.tolist()) == {0.0, 2.0}:
                raise InputError("the phenotype has only 0 and 2: in PLINK's 1/2 coding 0 is "
                                 "missing, which leaves cases (2) and no controls (1)")
            if vals.size == 1:
                what = {0.0: "controls (0)", 1.0: "cases (1) or controls (PLINK 1)",
                        2.0: "cases (PLINK 2)"}.get(float(vals[0]), f"the value {vals[0]:g}")
                raise InputError(f"the case-control phenotype has only {what}: both cases "
                                 "and controls are needed")
            shown = ", ".join(f"{v:g}" for v in vals[:6]) + (", ..." if vals.size > 6 else "")
            raise InputError(f"the phenotype is not a case-control trait: values {shown}; "
                             "expected 0/1 (control/case) or PLINK's 1/2 (0 and -9 missing)")
        coding = found
    if coding == "1/2":
        missing = missing | (arr == 0.0)
        ok = np.isin(arr[~missing], (1.0, 2.0))
        out = np.where(missing, np.nan, arr - 1.0)
    else:
        ok = np.isin(arr[~missing], (0.0, 1.0))
        out = np.where(missing, np.nan, arr)
    if not ok.all():
        bad = arr[~missing][~ok][0]
        raise InputError(f"the phenotype has the value {bad:g}, which is not in the {coding} "
                         "case-control coding")
    n_cases = int(np.nansum(out == 1.0))
    n_controls = int(np.nansum(out == 0.0))
    if n_cases == 0 or n_controls == 0:
        raise InputError(f"the case-control phenotype ({coding} coding) has {n_cases} cases and "
                         f"{n_controls} controls: both are needed")
    if isinstance(y, pd.Series):
        out = pd.Series(out, index=y.index, name=y.name)
    elif hasattr(y, "copy") and hasattr(y, "dims"):  # xarray
        out = y.copy(data=out.reshape(y.shape))
    res = BinaryPhenotype(out, coding, n_cases, n_controls, int(missing.sum()))
    log.info("Recognised a %s.", res.describe())
    return res
