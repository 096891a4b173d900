"""When each (user, item) pair last happened: the engine's timestamp log.

Bags hold weights only; recency-aware algorithms (decayed popularity) and
time-based evaluation splits also need *when*. The log is kept beside the
bags, keyed by their dense user and item indices, as append-only arrays:
recording a batch is one array append, and a removal appends a tombstone so
the pair's earlier times stop counting. Reads compact the log into one
latest time per pair; the log compacts itself when it has grown to twice
its compacted size, so memory stays proportional to the pairs held.

Times are seconds since the Unix epoch (float64). A pair recorded without a
time has none (NaN where an array must hold one).
"""

from __future__ import annotations

import math
import threading
from datetime import datetime, timezone
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from backpack.errors import InvalidInputError

_TOMBSTONE = -np.inf  # sorts before every real time, so "latest" never picks it by accident


class TimedPairs(NamedTuple):
    """One latest time per (user, item) pair, sorted by user then item."""

    users: np.ndarray  # int32 user indices
    items: np.ndarray  # int32 item indices
    times: np.ndarray  # float64 seconds since the epoch

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The three arrays, ready to save or pass to :meth:`TimestampLog.replace`."""
        return self.users, self.items, self.times


def timestamp_array(timestamps, count: int) -> np.ndarray:
    """``count`` times as float64 seconds since the epoch; None or NaN means "no time".

    Accepts numbers, ``datetime`` objects (naive means UTC) and NumPy
    ``datetime64`` values, one per interaction, or a single one for all.
    """
    try:
        arr = np.asarray(timestamps)
    except (TypeError, ValueError):
        raise InvalidInputError("timestamps must be a sequence of numbers, datetimes or None") from None
    if arr.ndim > 1:
        raise InvalidInputError(f"timestamps must be one-dimensional, got shape {arr.shape}")
    arr = arr.reshape(-1)
    if arr.dtype.kind in "iuf":  # the bulk path: numbers already
        t = arr.astype(np.float64)
    elif arr.dtype.kind == "M":
        t = np.where(np.isnat(arr), np.nan, arr.astype("datetime64[ns]").astype(np.int64) / 1e9)
    else:
        t = np.array([_seconds(v) for v in arr.tolist()], dtype=np.float64)
    if t.size == 1 and count != 1:
        t = np.full(count, t[0])
    if t.shape != (count,):
        raise InvalidInputError(f"got {count} interactions but {t.size} timestamps")
    if np.isinf(t).any():
        raise InvalidInputError("timestamps must be finite (None or NaN for 'no time')")
    return t


def _seconds(value) -> float:
    if value is None:
        return np.nan
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, np.datetime64):
        return np.nan if np.isnat(value) else value.astype("datetime64[ns]").astype(np.int64) / 1e9
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"timestamp {value!r} is not a number of seconds, a datetime or None")
    return float(value)


class TimestampLog:
    """Latest time of each (user index, item index) pair; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._compact = TimedPairs(*_empty())
        self._pending = 0  # entries in _chunks

    def record(self, users: np.ndarray, items: np.ndarray, times: np.ndarray) -> None:
        """Note that the pairs ``(users[i], items[i])`` happened at ``times[i]`` (NaN: no time)."""
        keep = ~np.isnan(times)  # a pair without a time adds nothing to know
        if keep.any():
            self._append(users[keep], items[keep], times[keep])

    def forget(self, users: np.ndarray, items: np.ndarray) -> None:
        """The pairs were removed: their earlier times no longer count."""
        if len(users):
            self._append(users, items, np.full(len(users), _TOMBSTONE))

    def replace(self, users, items, times) -> None:
        """Replace the whole log with these pairs (e.g. read back from disk)."""
        users = np.asarray(users, dtype=np.int32)
        items = np.asarray(items, dtype=np.int32)
        times = np.asarray(times, dtype=np.float64)
        if not (users.shape == items.shape == times.shape and users.ndim == 1):
            raise InvalidInputError("users, items and times must be 1-d arrays of one length")
        pairs = _latest(users, items, times)
        with self._lock:
            self._chunks, self._pending, self._compact = [], 0, pairs

    def clear(self) -> None:
        """Forget every time (the bags were replaced)."""
        self.replace(*_empty())

    def snapshot(self) -> TimedPairs:
        """The latest time of every pair that has one."""
        with self._lock:
            self._compact_locked()
            return self._compact

    def __len__(self) -> int:
        return len(self.snapshot().users)

    def aligned(self, user_items: sp.csr_matrix) -> np.ndarray:
        """One time per stored entry of ``user_items`` (a snapshot of the bags), in its order; NaN where none."""
        return self.as_csr(user_items).data

    def as_csr(self, user_items: sp.csr_matrix) -> sp.csr_matrix:
        """A float64 matrix with ``user_items``' exact structure holding each entry's time (NaN: none)."""
        m = user_items.tocsr()
        pairs = self.snapshot()
        n_cols = np.int64(max(m.shape[1], 1))
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        wanted = rows * n_cols + m.indices
        known = pairs.users.astype(np.int64) * n_cols + pairs.items  # sorted: pairs are sorted by (user, item)
        inside = (pairs.users < m.shape[0]) & (pairs.items < m.shape[1])
        known, known_times = known[inside], pairs.times[inside]
        at = np.searchsorted(known, wanted)
        found = at < known.size
        found[found] = known[at[found]] == wanted[found]
        times = np.full(m.nnz, np.nan)
        times[found] = known_times[at[found]]
        return sp.csr_matrix((times, m.indices.copy(), m.indptr.copy()), shape=m.shape)

    # -- internals -----------------------------------------------------------

    def _append(self, users, items, times) -> None:
        chunk = (
            np.asarray(users, dtype=np.int32),
            np.asarray(items, dtype=np.int32),
            np.asarray(times, dtype=np.float64),
        )
        with self._lock:
            self._chunks.append(chunk)
            self._pending += len(chunk[0])
            if self._pending > max(1 << 16, len(self._compact.users)):
                self._compact_locked()

    def _compact_locked(self) -> None:
        if not self._chunks:
            return
        parts = [self._compact.entries(), *self._chunks]
        users, items, times = (np.concatenate([p[k] for p in parts]) for k in range(3))
        self._compact = _latest(users, items, times)
        self._chunks, self._pending = [], 0


def _empty():
    return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float64)


def _latest(users: np.ndarray, items: np.ndarray, times: np.ndarray) -> TimedPairs:
    """One entry per pair: its latest time after its last tombstone (pairs ending in a tombstone go)."""
    if users.size == 0:
        return TimedPairs(*_empty())
    position = np.arange(users.size)
    order = np.lexsort((position, items, users))  # by pair, then in the order recorded
    u, i, t = users[order], items[order], times[order]
    starts = np.flatnonzero(np.r_[True, (u[1:] != u[:-1]) | (i[1:] != i[:-1])])
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, u.size]))
    # the last tombstone of each pair; entries before it (and it) no longer count
    tomb = np.where(t == _TOMBSTONE, np.arange(u.size), -1)
    last_tomb = np.maximum.reduceat(tomb, starts)
    live = np.arange(u.size) > last_tomb[group]
    best = np.maximum.reduceat(np.where(live, t, -np.inf), starts)
    keep = np.isfinite(best)
    return TimedPairs(u[starts][keep].copy(), i[starts][keep].copy(), best[keep])


def parse_timestamp(value, where: str) -> float:
    """Seconds since the epoch from a number or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        t = float(value)
    elif isinstance(value, str):
        try:
            t = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                raise InvalidInputError(
                    f"{where}: timestamp {value!r} is neither seconds since the epoch nor an ISO 8601 date"
                ) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            t = parsed.timestamp()
    else:
        raise InvalidInputError(f"{where}: timestamp {value!r} is not a number or a date string")
    if not math.isfinite(t):
        raise InvalidInputError(f"{where}: timestamp {value!r} is not finite")
    return t
