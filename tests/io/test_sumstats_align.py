"""align_alleles on a strand-ambiguous pair (munging drops them; aligning alone keeps them):
a C/G SNP given as the reference has it matches both as itself and as the swapped
complement, and is taken as it is (Z kept, not negated); a swapped unambiguous pair is still
negated."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayeslmm.io.sumstats import align_alleles


def test_ambiguous_pair_as_given_is_not_negated():
    ref = pd.DataFrame({"SNP": ["a", "c"], "A1": ["C", "A"], "A2": ["G", "C"]})
    ss = pd.DataFrame({"SNP": ["a", "c"], "A1": ["C", "C"], "A2": ["G", "A"],
                       "Z": [1.5, -1.0], "N": 100.0})
    out = align_alleles(ss, ref)
    np.testing.assert_array_equal(out["Z"], [1.5, 1.0])
    assert list(out["A1"]) == ["C", "A"]
