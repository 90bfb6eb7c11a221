"""Hand-written log-densities compiled by numba and handed to nutpie: one shell (``shell``,
``priors``) and one module per model family that has one."""
