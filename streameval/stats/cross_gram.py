"""Two feature windows plus their cross-Gram matrix, kept up to date one clip at a time.

For the windowed Fréchet distance the expensive part of a refresh is the n1×n2 product of the centred
feature matrices. Keeping K[i, j] = <x_i - c, y_j - c> (c: a fixed shift, the first feature seen) as clips
arrive costs O(n·d) per clip, and a refresh then only double-centres K (O(n1·n2)): with H the centring
matrix, (X - 1μxᵀ)(Y - 1μyᵀ)ᵀ = H K H exactly, for any common shift c.

Rows live in growable buffers indexed [start, end); expiring a row only moves ``start``, and buffers are
compacted (or doubled) when ``end`` reaches the capacity, so the amortised cost per clip is O(n·d).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Mat = NDArray[np.float64]


class _Rows:
    """Feature rows (shifted by c) and their stream times for one side."""

    def __init__(self, dim: int, capacity: int = 64) -> None:
        self.data = np.empty((capacity, dim))
        self.times = np.empty(capacity)
        self.start = 0
        self.end = 0

    @property
    def n(self) -> int:
        return self.end - self.start

    def live(self) -> Mat:
        return self.data[self.start : self.end]


class CrossGram:
    """Features of two streams ``x`` and ``y`` in windows, with K = X̃ Ỹᵀ maintained incrementally."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.x = _Rows(dim)
        self.y = _Rows(dim)
        self.k = np.empty((self.x.data.shape[0], self.y.data.shape[0]))
        self.shift: NDArray[np.float64] | None = None

    def _make_room(self, side: _Rows, is_x: bool) -> None:
        """Ensure ``side.end`` < capacity: compact live rows to the front, doubling when mostly full."""
        cap = side.data.shape[0]
        if side.end < cap:
            return
        n = side.n
        new_cap = cap * 2 if n > cap // 2 else cap
        data = np.empty((new_cap, self.dim))
        data[:n] = side.live()
        times = np.empty(new_cap)
        times[:n] = side.times[side.start : side.end]
        if is_x:
            k = np.empty((new_cap, self.k.shape[1]))
            k[:n, self.y.start : self.y.end] = self.k[side.start : side.end, self.y.start : self.y.end]
        else:
            k = np.empty((self.k.shape[0], new_cap))
            k[self.x.start : self.x.end, :n] = self.k[self.x.start : self.x.end, side.start : side.end]
        side.data, side.times, side.start, side.end, self.k = data, times, 0, n, k

    def add(self, row: NDArray[np.float64], t: float, *, is_x: bool) -> None:
        """Append one feature vector to side x or y and fill its row/column of K."""
        if self.shift is None or (self.x.n == 0 and self.y.n == 0):
            self.shift = row.copy()
        side, other = (self.x, self.y) if is_x else (self.y, self.x)
        self._make_room(side, is_x)
        i = side.end
        np.subtract(row, self.shift, out=side.data[i])
        side.times[i] = t
        dots = other.live() @ side.data[i]
        if is_x:
            self.k[i, other.start : other.end] = dots
        else:
            self.k[other.start : other.end, i] = dots
        side.end += 1

    def drop_oldest(self, *, is_x: bool, count: int = 1) -> None:
        side = self.x if is_x else self.y
        side.start = min(side.start + count, side.end)

    def drop_until(self, limit: float, *, is_x: bool) -> int:
        """Drop rows with time <= limit; returns how many."""
        side = self.x if is_x else self.y
        t = side.times[side.start : side.end]
        count = int(np.searchsorted(t, limit, side="right"))
        side.start += count
        return count

    def centred_cross(self) -> Mat:
        """(X - 1μxᵀ)(Y - 1μyᵀ)ᵀ for the live rows, from K by double centring."""
        k = self.k[self.x.start : self.x.end, self.y.start : self.y.end]
        rows = k.mean(axis=1, keepdims=True)
        cols = k.mean(axis=0, keepdims=True)
        return np.asarray(k - rows - cols + rows.mean(), dtype=np.float64)
