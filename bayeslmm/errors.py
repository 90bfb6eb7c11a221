"""Exception classes of bayeslmm.

Every error a user can cause by giving bad input derives from :class:`BayesLMMError`,
so the command line can turn it into a one-line message and a non-zero exit code
without ever showing a traceback.
"""

from __future__ import annotations


class BayesLMMError(Exception):
    """Base class of every error bayeslmm raises on purpose."""


class InputError(BayesLMMError, ValueError):
    """An input has the wrong shape, type or content (NaN, non-numeric, constant...)."""


class CollinearityError(InputError):
    """The fixed-effect design matrix X is rank deficient (notes 2.1.1)."""


class KernelError(InputError):
    """A covariance kernel K is not symmetric, not finite or not positive semi-definite."""


class AlignmentError(InputError):
    """Inputs cannot be matched by sample ID (no overlap, duplicated IDs...)."""


class FileFormatError(BayesLMMError, ValueError):
    """A file is missing, truncated or not in the format it claims to be."""


class ConvergenceWarning(UserWarning):
    """An iterative fit stopped before meeting its convergence criterion."""


class SamplingWarning(UserWarning):
    """MCMC diagnostics (R-hat, ESS, divergences) indicate an unreliable posterior."""
