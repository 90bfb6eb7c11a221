"""One interval convention across tables, figures and comparisons, settable and named."""

import numpy as np
import pytest
import xarray as xr

import bayeslmm
from bayeslmm.bayes import summaries
from bayeslmm.reports.writers import posterior_summary


@pytest.fixture
def convention():
    yield summaries.INTERVAL
    summaries.set_interval(0.95, "hdi")  # the default, restored for the other tests


def _tree(rng):
    h2 = rng.beta(2, 5, size=(2, 2000))
    return xr.DataTree.from_dict({"posterior": xr.Dataset({"h2": (("chain", "draw"), h2)})})


def test_default_is_a_95_percent_hdi_named_everywhere(convention, rng):
    tree = _tree(rng)
    assert summaries.interval_label() == "95% HDI"
    cols = posterior_summary(tree).columns
    assert list(cols) == ["mean", "sd", "hdi95_lower", "hdi95_upper", "ess_bulk", "ess_tail",
                          "r_hat", "mcse_mean", "mcse_sd"]
    x = rng.beta(2, 5, 20000)
    lo, hi = summaries.credible_interval(x)
    # the HDI of a right-skewed density is shorter than its equal-tailed interval
    q = np.quantile(x, [0.025, 0.975])
    assert hi - lo < q[1] - q[0]


def test_setting_the_convention_changes_every_table(convention, rng):
    tree = _tree(rng)
    summaries.set_interval(0.89, "eti")
    assert summaries.interval_label() == "89% ETI"
    cols = posterior_summary(tree).columns
    assert "eti89_lower" in cols and "hdi95_lower" not in cols
    x = rng.normal(size=50000)
    lo, hi = summaries.credible_interval(x)
    np.testing.assert_allclose([lo, hi], np.quantile(x, [0.055, 0.945]))
    with pytest.raises(bayeslmm.InputError, match="kind"):
        summaries.set_interval(kind="central")
    with pytest.raises(bayeslmm.InputError, match="probability"):
        summaries.set_interval(1.5)
