"""The constant of every Gaussian log-density, held once for the package."""

import math

__all__ = ["LOG2PI"]

#: log(2 pi): -n/2 log(2 pi) in every multivariate normal log-density (notes eq. 48)
LOG2PI = math.log(2 * math.pi)
