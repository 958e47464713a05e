"""Independent references for the statistics tests: numpy/scipy one-shot formulas and an mpmath Fréchet."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import scipy.linalg
import scipy.stats
from numpy.typing import NDArray

Arr = NDArray[np.float64]


def pearson_ref(x: Arr, y: Arr) -> float:
    """scipy's Pearson r; NaN (scipy's answer, without its warning) for a constant input."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        return float(scipy.stats.pearsonr(x, y).statistic)


def ccc_ref(x: Arr, y: Arr) -> float:
    """Lin's CCC with population moments, computed two-pass by numpy."""
    sxy = np.mean((x - x.mean()) * (y - y.mean()))
    return float(2 * sxy / (np.var(x) + np.var(y) + (x.mean() - y.mean()) ** 2))


def rmse_ref(x: Arr, y: Arr) -> float:
    return float(np.sqrt(np.mean((x - y) ** 2)))


def frechet_sqrtm_ref(mu1: Arr, s1: Arr, mu2: Arr, s2: Arr) -> float:
    """The usual reference: scipy.linalg.sqrtm of S1 S2, real part of the trace."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def frechet_mp_ref(x: Arr, y: Arr, dps: int = 50) -> float:
    """Fréchet distance of the ddof=1 Gaussians of x and y in 50-digit arithmetic (mpmath).

    Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2) with symmetric eigendecompositions; round-off eigenvalues
    are ~1e-50, so their square roots (~1e-25) do not disturb the result even for singular covariances.
    """
    with mpmath.workdps(dps):

        def cov(a: Arr) -> tuple[mpmath.matrix, mpmath.matrix]:
            n, d = a.shape
            m = mpmath.matrix(a.tolist())
            mu = mpmath.matrix(1, d)
            for j in range(d):
                mu[0, j] = mpmath.fsum(m[i, j] for i in range(n)) / n
            c = mpmath.matrix(n, d)
            for i in range(n):
                for j in range(d):
                    c[i, j] = m[i, j] - mu[0, j]
            return mu, (c.T * c) / (n - 1)

        mu1, s1 = cov(x)
        mu2, s2 = cov(y)
        d = x.shape[1]
        e, q = mpmath.eigsy(s1)
        root = mpmath.diag([mpmath.sqrt(max(e[i], 0)) for i in range(d)])
        s1h = q * root * q.T
        ev, _ = mpmath.eigsy(s1h * s2 * s1h)
        tr_sqrt = mpmath.fsum(mpmath.sqrt(max(ev[i], 0)) for i in range(d))
        dmu = mpmath.fsum((mu1[0, j] - mu2[0, j]) ** 2 for j in range(d))
        tr = mpmath.fsum(s1[i, i] + s2[i, i] for i in range(d))
        return float(dmu + tr - 2 * tr_sqrt)
