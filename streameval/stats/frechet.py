"""Fréchet distance between two Gaussians, safe for singular covariances and fast for few samples.

    FD = ||mu1 - mu2||² + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))

No d×d matrix square root is formed. Tr((S1 S2)^(1/2)) is the sum of the square roots of the eigenvalues of
S1 S2, which are real and non-negative (S1 S2 is similar to S1^(1/2) S2 S1^(1/2)):

* From features (n1, n2 samples): with centred, scaled data A = (X - mu1)/sqrt(n1 - 1) (S1 = AᵀA) and
  likewise B, the non-zero eigenvalues of S1 S2 = AᵀA BᵀB are those of (A Bᵀ)(A Bᵀ)ᵀ, so the trace term is
  the nuclear norm (sum of singular values) of the n1×n2 matrix A Bᵀ, and Tr(S1) = ||A||_F². Cost
  O(n1 n2 d) — no d×d matrix at all — and the singular values are accurate to eps·||A Bᵀ|| with no square
  root of round-off, so it is also the accurate route when n <= d (singular covariances).
* From covariances: S1 = U diag(w) Uᵀ (eigh); with F = U diag(sqrt(w)) the eigenvalues of Fᵀ S2 F are those
  of S1 S2. Eigenvalues of S1 at round-off level (relative to the largest) are dropped before the square root,
  as are round-off eigenvalues of Fᵀ S2 F, because sqrt turns an eps-sized residue into a sqrt(eps)-sized
  error. Cost: one eigh and one eigvalsh of d×d (about 3× faster than sqrtm, and never complex).

A result below zero, or within the round-off level of zero, is reported as 0 with ``clamped=True``
(a warning is logged when the negative part is larger than round-off, e.g. non-PSD covariances).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg
from numpy.typing import ArrayLike, NDArray

from streameval.errors import InputError, UsageError
from streameval.stats._check import matrix

log = logging.getLogger(__name__)

Vec = NDArray[np.float64]
Mat = NDArray[np.float64]
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, slots=True)
class FrechetResult:
    """A Fréchet distance with how it was obtained.

    ``low_n``: some side had n <= d samples (singular covariance; the value is still exact, but a
    distribution estimate from so few samples is biased upwards). ``clamped``: the raw value was negative or
    within round-off of 0 and is reported as 0. ``raw``: the value before clamping.
    """

    value: float
    low_n: bool
    clamped: bool
    raw: float
    dim: int
    n1: int | None
    n2: int | None
    method: Literal["features", "covariance"]


def _finish(
    mean_term: float,
    tr1: float,
    tr2: float,
    tr_sqrt: float,
    *,
    dim: int,
    n1: int | None,
    n2: int | None,
    method: Literal["features", "covariance"],
) -> FrechetResult:
    raw = math.fsum((mean_term, tr1, tr2, -2.0 * tr_sqrt))
    # Round-off of the trace cancellation scales with the traces and the number of terms summed.
    noise = 64.0 * EPS * max(dim, n1 or 0, n2 or 0) * (tr1 + tr2 + mean_term)
    clamped = raw <= noise
    if raw < -1e3 * noise:
        log.warning("Fréchet distance came out at %.6g (below round-off %.3g): covariances not PSD?", raw, noise)
    low_n = (n1 is not None and n1 <= dim) or (n2 is not None and n2 <= dim)
    return FrechetResult(0.0 if clamped else raw, low_n, clamped, raw, dim, n1, n2, method)


def mean_term(mu1: Vec, mu2: Vec) -> float:
    diff = mu1 - mu2
    return float(diff @ diff)


def frechet_result(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> FrechetResult:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) with details; covariances may be singular."""
    m1 = np.asarray(mu1, dtype=np.float64)
    m2 = np.asarray(mu2, dtype=np.float64)
    if m1.ndim != 1 or m1.shape != m2.shape:
        raise UsageError(f"mu1 and mu2 must be vectors of the same length, got {m1.shape} and {m2.shape}")
    d = m1.shape[0]
    s1 = np.asarray(sigma1, dtype=np.float64)
    s2 = np.asarray(sigma2, dtype=np.float64)
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise UsageError(f"{name} must have shape ({d}, {d}), got {s.shape}")
    for name, a in (("mu1", m1), ("mu2", m2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise InputError(f"{name} must be finite")
    return from_cov(m1, (s1 + s1.T) * 0.5, m2, (s2 + s2.T) * 0.5, n1=None, n2=None)


def from_cov(m1: Vec, s1: Mat, m2: Vec, s2: Mat, *, n1: int | None, n2: int | None) -> FrechetResult:
    d = m1.shape[0]
    try:
        w, u = scipy.linalg.eigh(s1, check_finite=False)
        w_max = float(w[-1]) if w.size else 0.0
        keep = w > d * EPS * max(w_max, 0.0)
        f = u[:, keep] * np.sqrt(w[keep])
        tr_sqrt = 0.0
        if f.shape[1]:
            mu = scipy.linalg.eigvalsh(f.T @ s2 @ f, check_finite=False)
            mu_keep = mu[mu > d * EPS * max(float(mu[-1]), 0.0)]
            tr_sqrt = math.fsum(np.sqrt(mu_keep).tolist())
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise InputError(f"eigendecomposition for the Fréchet distance failed: {exc}") from exc
    tr1 = math.fsum(np.maximum(w, 0.0).tolist())
    tr2 = math.fsum(np.diag(s2).tolist())
    return _finish(mean_term(m1, m2), tr1, tr2, tr_sqrt, dim=d, n1=n1, n2=n2, method="covariance")


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Fréchet distance ``||mu1-mu2||² + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` (non-negative float)."""
    return frechet_result(mu1, sigma1, mu2, sigma2).value


def _centred(x: Mat) -> tuple[Vec, Mat]:
    mu = x.mean(axis=0)
    return mu, (x - mu) / math.sqrt(x.shape[0] - 1)


def frechet_result_from_features(x: ArrayLike, y: ArrayLike) -> FrechetResult:
    """Fréchet distance between the Gaussians fitted (ddof=1) to samples ``x`` (n1, d) and ``y`` (n2, d).

    Uses the n1×n2 route when min(n1, n2) <= d (always exact, and cheap for few samples), else the
    covariance route.
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2:
        raise UsageError(f"x must have shape (n, d), got {xa.shape}")
    d = xa.shape[1]
    xa = matrix(xa, d, "x")
    ya = matrix(y, d, "y")
    n1, n2 = xa.shape[0], ya.shape[0]
    if min(n1, n2) < 2:
        raise InputError(f"the Fréchet distance needs at least 2 samples per side, got {n1} and {n2}")
    mu1, a = _centred(xa)
    mu2, b = _centred(ya)
    if min(n1, n2) > d:
        return from_cov(mu1, a.T @ a, mu2, b.T @ b, n1=n1, n2=n2)
    return from_cross(mean_term(mu1, mu2), _frob2(a), _frob2(b), a @ b.T, n1=n1, n2=n2, dim=d)


def _frob2(a: Mat) -> float:
    return float(np.einsum("ij,ij->", a, a))


def from_cross(mean_term: float, tr1: float, tr2: float, cross: Mat, *, n1: int, n2: int, dim: int) -> FrechetResult:
    """Fréchet distance from its parts: ||mu1-mu2||², Tr S1, Tr S2 and the scaled centred cross product
    A Bᵀ (n1×n2, with S1 = AᵀA, S2 = BᵀB), whose nuclear norm is Tr((S1 S2)^(1/2))."""
    try:
        sv = scipy.linalg.svdvals(cross, check_finite=False)
    except (np.linalg.LinAlgError, ValueError) as exc:
        raise InputError(f"SVD for the Fréchet distance failed: {exc}") from exc
    return _finish(mean_term, tr1, tr2, math.fsum(sv.tolist()), dim=dim, n1=n1, n2=n2, method="features")


def frechet_distance_from_features(x: ArrayLike, y: ArrayLike) -> float:
    """Fréchet distance between the Gaussians fitted (ddof=1) to feature samples ``x`` and ``y``."""
    return frechet_result_from_features(x, y).value


def frechet_result_from_stats(a: object, b: object) -> FrechetResult:
    """Fréchet distance between two :class:`~streameval.stats.gaussian.GaussianStats` (e.g. whole-stream)."""
    from streameval.stats.gaussian import GaussianStats

    if not isinstance(a, GaussianStats) or not isinstance(b, GaussianStats) or a.dim != b.dim:
        raise UsageError("frechet_result_from_stats needs two GaussianStats of the same dim")
    ga, gb = a.get(), b.get()
    if ga is None or gb is None:
        raise InputError(f"the Fréchet distance needs at least 2 samples per side, got {a.n} and {b.n}")
    return from_cov(ga[0], ga[1], gb[0], gb[1], n1=a.n, n2=b.n)
