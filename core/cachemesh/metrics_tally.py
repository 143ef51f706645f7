"""The two primitives a cache's metrics are made of: exact counters and latency histograms.

A metered ``get`` on the memory backend takes about half a microsecond, so the counter has
to cost a few tens of nanoseconds and stay exact when many threads count at once. A
`Tally`'s hot-path increment is ``next(tally.counter)`` on an ``itertools.count``: a single
C call, which the GIL makes atomic, with no lock to take. Bulk additions (``get_many``
misses, keys deleted by a pattern) are rare and take a lock. On a free-threaded build (no
GIL), the counter is a locked one instead: slower, still exact.

`Latency` is only touched by the operations a cache decides to time (every one on a network
backend, one in `sample_every` in process): it queues each duration and folds the queue, in
batches under a lock, into a histogram (what Prometheus wants), a running total (for the
average) and the most recent samples (for percentiles of what the cache does now, not since
start-up).
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
import threading
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

#: Upper bounds (seconds) of the latency histogram buckets: 1 µs to 10 s, about three per
#: decade. An in-process hit lands in the first buckets, a Redis round trip near 100 µs.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.000001,
    0.0000025,
    0.000005,
    0.00001,
    0.000025,
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

#: Samples kept for percentiles: the last 1,024 timed operations of each kind.
RECENT_SAMPLES = 1024

#: How often a `SampledTally` read tries for a lap-consistent view before it settles for the
#: previous read. Each retry needs other threads to complete a lap between two C calls.
_READ_ATTEMPTS = 100

_HAS_GIL: bool = getattr(sys, "_is_gil_enabled", lambda: True)()


class _LockedCount:
    """``itertools.count`` with a lock, for interpreters where a C call is not atomic."""

    __slots__ = ("_lock", "value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        with self._lock:
            value = self.value
            self.value = value + 1
            return value


class _LockedCycle:
    """``itertools.cycle(range(n))`` with a lock, for interpreters without a GIL."""

    __slots__ = ("_lock", "_n", "_position")

    def __init__(self, n: int) -> None:
        self._lock = threading.Lock()
        self._n = n
        self._position = 0

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        with self._lock:
            position = self._position
            self._position = (position + 1) % self._n
            return position


def _count_value(counter: Iterator[int]) -> int:
    """The next value of an ``itertools.count`` (or `_LockedCount`), without advancing it."""
    if isinstance(counter, _LockedCount):
        return counter.value
    # repr is "count(N)": the only way to read an itertools.count without advancing it
    return int(repr(counter)[6:-1])


class Tally:
    """An exact event counter: ``next(tally.counter)`` on the hot path, `add` in bulk."""

    __slots__ = ("_extra", "_lock", "counter")

    def __init__(self) -> None:
        #: Advance with ``next(counter)``; it returns the count before this event.
        self.counter: Iterator[int] = itertools.count() if _HAS_GIL else _LockedCount()
        self._extra = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        """Count `count` events at once (a lock: for bulk operations, not per key)."""
        with self._lock:
            self._extra += count

    @property
    def value(self) -> int:
        """Events counted so far."""
        return _count_value(self.counter) + self._extra


class SampledTally:
    """An exact call counter that also picks the calls to time, allocating nothing per call.

    ``next(itertools.count())`` returns a new int object past 256: an allocation and a free
    on every metered ``get`` of a 0.5 µs memory hit, about a third of what metrics cost
    there. A cycle over ``range(every)`` hands out cached small ints instead, and its 0 (one
    call in `every`, the first call included) says "time this one". Whoever draws a 0 also
    advances `laps`, so the calls are ``laps * every`` plus the position in the cycle.

    The hot path: ``if not next(t.ticks): next(t.laps); ...time it...``. Reading draws one
    value itself to learn the position (a cycle cannot be read without advancing it) and
    subtracts its own draws. It reads `laps` before and after that draw and tries again when
    other callers completed a lap in between: with either read alone, such a lap would be
    counted with a position from another lap, a full lap too many or too few. A caller that
    drew a 0 but has not yet advanced `laps` makes a concurrent read come out `every` short.
    Reads never go backwards (a read is at least the one before) and never count a call
    that has not been made, and they are exact once no call is half-way.
    """

    __slots__ = ("_last", "_lock", "_reads", "every", "laps", "ticks")

    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every!r}")
        self.every = every
        #: Draw one per call; 0 means: advance `laps`, and time this call.
        self.ticks: Iterator[int] = (
            itertools.cycle(range(every)) if _HAS_GIL else _LockedCycle(every)
        )
        self.laps: Iterator[int] = itertools.count() if _HAS_GIL else _LockedCount()
        self._lock = threading.Lock()
        self._reads = 0
        self._last = 0

    def tick(self) -> bool:
        """Count one call (off the hot path); True when it is one to time."""
        if next(self.ticks):
            return False
        next(self.laps)
        return True

    @property
    def value(self) -> int:
        """Calls counted so far."""
        with self._lock:
            for _ in range(_READ_ATTEMPTS):
                laps = _count_value(self.laps)
                position = next(self.ticks)
                self._reads += 1
                if not position:  # this read's own draw starts a lap
                    next(self.laps)
                    laps += 1
                if _count_value(self.laps) == laps:  # no lap completed meanwhile
                    break
            else:  # never seen on CPython; the previous read is never too high
                return self._last
            drawn = (laps - 1) * self.every + position + 1
            value = max(self._last, drawn - self._reads)
            self._last = value
            return value


@dataclass(frozen=True)
class LatencyData:
    """A copy of one `Latency`, safe to read, merge and export while the cache runs on."""

    bounds: tuple[float, ...]
    #: Observations per bucket (not cumulative); the last one is above every bound.
    buckets: tuple[int, ...]
    count: int
    total: float
    max: float
    recent: tuple[float, ...]

    def merge(self, other: LatencyData) -> LatencyData:
        """Both sets of observations as one (the caches of one namespace, together)."""
        if other.bounds != self.bounds:
            raise ValueError("cannot merge latency histograms with different buckets")
        return LatencyData(
            self.bounds,
            tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True)),
            self.count + other.count,
            self.total + other.total,
            max(self.max, other.max),
            self.recent + other.recent,
        )


class Latency:
    """Durations of one kind of operation: histogram, total, maximum and recent samples.

    `observe` only appends to a queue (a C-level, thread-safe append); the histogram is
    brought up to date in batches, by the observer that fills the queue or by a reader.
    Batching costs a few hundred nanoseconds less per timed operation than taking a lock
    and updating five figures each time, and nothing is lost: a batch takes exactly the
    samples queued when it starts.
    """

    __slots__ = (
        "_bounds",
        "_buckets",
        "_index",
        "_lock",
        "_max",
        "_pending",
        "_recent",
        "_total",
        "count",
    )

    #: Queued samples that trigger a batch update.
    BATCH = 64

    def __init__(
        self, bounds: Sequence[float] = DEFAULT_BUCKETS, recent: int = RECENT_SAMPLES
    ) -> None:
        self._bounds = tuple(bounds)
        self._index = functools.partial(bisect_left, self._bounds)
        self._buckets = [0] * (len(self._bounds) + 1)
        self._lock = threading.Lock()
        self._pending: deque[float] = deque()
        self._recent: deque[float] = deque(maxlen=recent)
        self._total = 0.0
        self._max = 0.0
        #: Durations folded into the histogram so far.
        self.count = 0

    def observe(self, seconds: float) -> None:
        """Record one duration (the ``le`` of Prometheus: a bucket holds values <= bound)."""
        pending = self._pending
        pending.append(seconds)
        if len(pending) >= self.BATCH:
            self._fold()

    def _fold(self) -> None:
        with self._lock:
            pending = self._pending
            popleft = pending.popleft
            batch = [popleft() for _ in range(len(pending))]  # later appends wait their turn
            if not batch:
                return
            buckets = self._buckets
            for index in map(self._index, batch):
                buckets[index] += 1
            self.count += len(batch)
            self._total += sum(batch)
            self._max = max(self._max, max(batch))
            self._recent.extend(batch)

    def data(self) -> LatencyData:
        self._fold()
        with self._lock:
            return LatencyData(
                self._bounds,
                tuple(self._buckets),
                self.count,
                self._total,
                self._max,
                tuple(self._recent),
            )


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of already sorted samples; None without samples."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def bucket_quantile(
    bounds: Sequence[float], cumulative: Sequence[float], fraction: float
) -> float | None:
    """A quantile estimated from cumulative bucket counts, as PromQL's histogram_quantile.

    Linear interpolation inside the bucket that holds the rank; a rank in the overflow
    bucket answers the highest finite bound. Used where only a histogram is known (a
    scraped Prometheus endpoint).
    """
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = fraction * cumulative[-1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=False):
        if count >= rank:
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return bounds[-1] if bounds else None


def cumulative(buckets: Iterable[int]) -> list[int]:
    """Running totals of per-bucket counts (the form Prometheus exposes)."""
    return list(itertools.accumulate(buckets))
