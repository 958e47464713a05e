"""Undefined results: the reasons a statistic has no value, and turning results into JSON-safe values.

A statistic never reports 0 or NaN for a value that does not exist: scalar ``get()`` returns None and the
statistic's ``reason`` says why; vector ``get()`` returns NaN in those channels and ``reasons`` says why per
channel. :func:`json_result` turns either form into ``{"value": ..., "reason": ...}`` with None (JSON null)
in place of NaN/inf, so JSON output never contains NaN.
"""

from __future__ import annotations

import math
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
from numpy.typing import NDArray

# Reasons, shared so that consumers can match on them.
EMPTY = "no samples"
FEWER_THAN_2 = "fewer than 2 samples"
CONSTANT = "constant series"
CONSTANT_X = "constant series (x)"
CONSTANT_Y = "constant series (y)"
CONSTANT_BOTH_EQUAL = "both series constant and equal"


def fewer_than(k: int) -> str:
    """Reason for a statistic that needs more than ``k - 1`` samples."""
    return EMPTY if k <= 1 else f"fewer than {k} samples"


JsonScalar: TypeAlias = float | None
JsonValue: TypeAlias = JsonScalar | list[JsonScalar]
JsonReason: TypeAlias = str | list[str | None] | None


class ScalarResult(Protocol):
    """What :func:`json_result` needs from a scalar statistic."""

    @property
    def reason(self) -> str | None: ...

    def get(self) -> float | None: ...


@runtime_checkable
class VectorResult(Protocol):
    """What :func:`json_result` needs from a K-channel statistic."""

    @property
    def reasons(self) -> list[str | None]: ...

    def get(self) -> NDArray[np.float64]: ...


def json_float(value: float | None) -> float | None:
    """A float that JSON can carry: NaN and ±inf become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def json_safe(
    value: float | NDArray[np.float64] | None, reason: str | list[str | None] | None = None
) -> dict[str, JsonValue | JsonReason]:
    """``{"value": v, "reason": r}`` with None for undefined values (per element for arrays).

    A non-finite value without a reason gets the reason "undefined", so a null is never unexplained.
    """
    if isinstance(value, np.ndarray):
        values = [json_float(float(v)) for v in value.ravel()]
        reasons = list(reason) if isinstance(reason, list) else [reason] * len(values)
        reasons = [None if v is not None else (r or "undefined") for v, r in zip(values, reasons, strict=True)]
        return {"value": values, "reason": reasons}
    out = json_float(value)
    if isinstance(reason, list):
        reason = None
    if out is None and reason is None:
        reason = "undefined"
    return {"value": out, "reason": None if out is not None else reason}


def json_result(stat: ScalarResult | VectorResult) -> dict[str, JsonValue | JsonReason]:
    """JSON-safe value and reason(s) of a statistic (scalar or vector)."""
    if isinstance(stat, VectorResult):
        return json_safe(stat.get(), stat.reasons)
    return json_safe(stat.get(), stat.reason)
