"""The one rule for interaction weights: what the engine keeps, so what the protocol, the store
and replay accept.

A weight is kept as float32 and must be > 0 and at most :data:`MAX_WEIGHT` as such. The rule is
stated on the float64 a caller sends so that SQL can state it too (``weight > ROUNDS_TO_ZERO AND
weight <= MAX_WEIGHT``): a value valid as float64 but 0.0 or inf as float32 is refused where it
arrives, never stored and then refused by the engine on every restart.
"""

from __future__ import annotations

import numpy as np

from backpack.errors import InvalidInputError

#: the largest interaction weight stored (one user's one interaction cannot weigh more)
MAX_WEIGHT = 1e6
#: float64 values at or below this round to 0.0 as float32 (half the smallest subnormal)
ROUNDS_TO_ZERO = 2.0**-150
WEIGHT_RULE = f"weights must be finite, > 0 once stored as float32 (1e-50 rounds to 0.0) and at most {MAX_WEIGHT:g}"


def weights_ok(weights: np.ndarray) -> np.ndarray:
    """Which float64 ``weights`` the engine keeps: the one rule the protocol, the engine, the
    store's ``check`` (in SQL: ``weight > ROUNDS_TO_ZERO AND weight <= MAX_WEIGHT``) and replay share."""
    w = np.asarray(weights, dtype=np.float64)
    return (w > ROUNDS_TO_ZERO) & (w <= MAX_WEIGHT)  # NaN fails both comparisons


def stored_weight(value, what: str = "weight") -> float:
    """One weight as the engine stores it (a float32 value as a Python float), else InvalidInputError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} {value!r:.80} is not a number") from None
    if not weights_ok(np.array([number]))[0]:
        raise InvalidInputError(f"{what} {number!r} refused: {WEIGHT_RULE}")
    return float(np.float32(number))


def weight_kept(value) -> bool:
    """Whether one stored weight (a number or None) passes the rule."""
    return value is not None and bool(weights_ok(np.array([value], dtype=np.float64))[0])
