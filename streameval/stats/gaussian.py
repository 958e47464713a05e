"""Running Gaussian statistics of feature vectors (count, mean, covariance) for the Fréchet distance.

State is float64 sums about a fixed shift vector ``c`` (the mean of the first batch): n, Σ(x - c) and
Σ(x - c)(x - c)ᵀ. Shifting keeps the covariance accurate when features have a large common offset (raw
power sums would cancel catastrophically), while batches still add and subtract exactly like raw sums, so
``revert`` and ``merge`` stay O(d²) per sample and O(1) in the number of samples held.
"""

from __future__ import annotations

import copy
from typing import Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streameval.errors import UsageError
from streameval.stats import results
from streameval.stats._check import matrix, positive_int

Vec = NDArray[np.float64]
Mat = NDArray[np.float64]


class GaussianStats:
    """Count, mean and covariance (ddof=1) of ``dim``-dimensional features, updated a batch at a time."""

    def __init__(self, dim: int) -> None:
        self.dim = positive_int(dim, "dim")
        self.reset()

    def reset(self) -> None:
        self._n = 0
        self._shift: Vec | None = None
        self._s1 = np.zeros(self.dim)
        self._s2 = np.zeros((self.dim, self.dim))

    @property
    def n(self) -> int:
        return self._n

    def update(self, batch: ArrayLike) -> None:
        """Add a batch of shape (m, dim) (or one vector (dim,))."""
        x = matrix(batch, self.dim, "batch")
        if self._shift is None:
            self._shift = x.mean(axis=0)
        xc = x - self._shift
        self._s1 += xc.sum(axis=0)
        self._s2 += xc.T @ xc
        self._n += x.shape[0]

    def revert(self, batch: ArrayLike) -> None:
        """Remove a batch that was added before."""
        x = matrix(batch, self.dim, "batch")
        if x.shape[0] > self._n or self._shift is None:
            raise UsageError(f"cannot revert {x.shape[0]} samples from GaussianStats holding {self._n}")
        self._n -= x.shape[0]
        if self._n == 0:
            # Restart exactly at zero rather than carrying round-off residues (keep the shift).
            self._s1[:] = 0.0
            self._s2[:] = 0.0
            return
        xc = x - self._shift
        self._s1 -= xc.sum(axis=0)
        self._s2 -= xc.T @ xc

    def merge(self, other: GaussianStats) -> None:
        """Add the samples summarised by ``other`` (re-expressed about this object's shift)."""
        if not isinstance(other, GaussianStats) or other.dim != self.dim:
            raise UsageError(f"cannot merge {other!r} into GaussianStats(dim={self.dim})")
        if other._n == 0 or other._shift is None:
            return
        if self._shift is None:
            self._shift = other._shift.copy()
        delta = other._shift - self._shift
        # Σ(x-a)(x-a)ᵀ with x-a = (x-b) + δ: S2_b + δ s1_bᵀ + s1_b δᵀ + n_b δδᵀ.
        cross = np.outer(delta, other._s1)
        self._s2 += other._s2 + cross + cross.T + other._n * np.outer(delta, delta)
        self._s1 += other._s1 + other._n * delta
        self._n += other._n

    @property
    def reason(self) -> str | None:
        return results.FEWER_THAN_2 if self._n < 2 else None

    @property
    def mean(self) -> Vec | None:
        """Mean vector, None when empty."""
        if self._n == 0 or self._shift is None:
            return None
        return self._shift + self._s1 / self._n

    def cov(self) -> Mat | None:
        """Covariance matrix with ddof=1 (symmetric), None with fewer than 2 samples."""
        if self._n < 2:
            return None
        m = self._s1 / self._n
        c = (self._s2 - self._n * np.outer(m, m)) / (self._n - 1)
        return (c + c.T) * 0.5

    def get(self) -> tuple[Vec, Mat] | None:
        """``(mean, cov)``, None with fewer than 2 samples."""
        mean, cov = self.mean, self.cov()
        return None if mean is None or cov is None else (mean, cov)

    def clone(self) -> Self:
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return f"GaussianStats(dim={self.dim}, n={self._n})"
