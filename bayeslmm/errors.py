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


class Interrupted(BaseException):  # noqa: N818 - a signal, like KeyboardInterrupt
    """The run was stopped by a signal (SIGINT, SIGTERM) and keeps nothing of its work.

    A ``BaseException`` like :class:`KeyboardInterrupt`, so that no ``except Exception``
    swallows it, but not a subclass of it: samplers that catch ``KeyboardInterrupt`` to
    return the draws made so far (nutpie, PyMC) must not turn a stopped run into a
    complete-looking posterior. ``exit_status`` is the shell's convention, 128 + signal.
    """

    def __init__(self, signum: int) -> None:
        import signal

        self.signum = int(signum)
        try:
            self.signame = signal.Signals(self.signum).name
        except ValueError:
            self.signame = f"signal {self.signum}"
        super().__init__(f"interrupted by {self.signame}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class IdentifiabilityWarning(UserWarning):
    """A variance component cannot be estimated from these data (its SE is NaN)."""
