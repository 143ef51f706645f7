"""Cache metrics: live counters per namespace (`CacheMetrics`) and their snapshots (`CacheStats`).

A cache built with metrics (``CACHE_METRICS`` names at least one sink, or ``metrics=`` is
given) counts every operation into its `CacheMetrics` as it runs, in process, at the cost
of a C-level counter increment; nothing is sent anywhere per operation. Sinks read the
aggregate when they want it: Prometheus at scrape time, the log sink every N seconds,
OpenTelemetry when its reader collects. A cache without metrics runs the plain methods: no
test per call, no cost.

Events counted: hits, misses, sets, deletes, errors; and from ``cache_result``: stale values
served, calls coalesced into another caller's load, bloom rejections, lock waits. Every
operation kind also keeps its durations (average, p50/p95/p99 of the recent ones, and a
histogram); in-process backends time one operation in 64 so that the clock does not cost
more than the operation, network backends time them all. See docs/metrics.md.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import BackendError
from .metrics_tally import (
    DEFAULT_BUCKETS,
    RECENT_SAMPLES,
    Latency,
    LatencyData,
    SampledTally,
    Tally,
    percentile,
)

if TYPE_CHECKING:
    from .metrics_monitored import MonitoredCache, SyncMonitoredCache

#: Operations a metered cache counts and times.
OPERATIONS: tuple[str, ...] = (
    "get",
    "get_many",
    "set",
    "set_many",
    "add",
    "delete",
    "delete_many",
    "delete_pattern",
)
#: Events of `CacheStats`, in the order sinks report them.
EVENTS: tuple[str, ...] = (
    "hit",
    "miss",
    "set",
    "delete",
    "error",
    "stale_served",
    "lock_wait",
    "coalesced",
    "bloom_rejection",
)
#: Event counters kept as such (a plain get's hits and a set's writes are derived instead).
_EXPLICIT = tuple(name for name in EVENTS if name != "error")
#: ``cache_result``'s counter names -> the event they are.
FUNCTION_EVENTS: Mapping[str, str] = {
    "stale_served": "stale_served",
    "coalesced": "coalesced",
    "bloom_rejections": "bloom_rejection",
}

#: Every metered cache's metrics, for `live_metrics()` (weakly: a dropped cache vanishes).
_LIVE: weakref.WeakSet[CacheMetrics] = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


class CacheMetrics:
    """The live counters and latencies of one cache namespace (the in-memory aggregate).

    Every cache built with metrics has one at ``cache.metrics``; ``Cache.sync()`` shares
    it. Pass your own to share one across caches (``Cache(config, metrics=m)``) or to time
    every in-process operation (``CacheMetrics("users", sample_every=1)``). Reading is
    ``snapshot()``; the counters only ever grow.
    """

    __slots__ = (
        "__weakref__",
        "_cancelled",
        "_errors",
        "_events",
        "_latency",
        "_lock",
        "_next_timed",
        "bounds",
        "calls",
        "get_misses",
        "namespace",
        "recent",
        "sample_every",
        "sampled",
    )

    def __init__(
        self,
        namespace: str = "default",
        *,
        sample_every: int = 1,
        recent: int = RECENT_SAMPLES,
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        if not isinstance(sample_every, int) or sample_every < 1:
            raise ValueError(f"sample_every must be an int >= 1, got {sample_every!r}")
        self.namespace = namespace
        #: Time one operation in this many (counts are always exact).
        self.sample_every = sample_every
        self.recent = recent
        self.bounds = tuple(sorted(buckets))
        self._lock = threading.Lock()
        #: Calls per operation, counted on entry.
        self.calls = {op: Tally() for op in OPERATIONS}
        #: More calls of the metered caches' ``get`` and ``set`` (their hot path: no
        #: allocation per call), added to `calls` when read.
        self.sampled = {op: SampledTally(sample_every) for op in ("get", "set")}
        self._errors: dict[str, Tally] = {op: Tally() for op in OPERATIONS}
        self._cancelled: dict[str, Tally] = {op: Tally() for op in OPERATIONS}
        self._events = {name: Tally() for name in _EXPLICIT}
        #: Misses of single-key gets (their hits are derived: calls that neither missed nor failed).
        self.get_misses = Tally()
        self._latency: dict[str, Latency] = {}
        self._next_timed = dict.fromkeys(OPERATIONS, 0)
        with _LIVE_LOCK:
            _LIVE.add(self)

    # --- recording (the cache's metered methods, MonitoredCache, cache_result) -----------
    def event(self, name: str, count: int = 1) -> None:
        """Count `count` events `name`: any of `EVENTS` but ``error`` (see `error`).

        Bulk operations and ``cache_result`` report here; a plain ``get``/``set`` is counted
        by its call counter instead, one increment per call.
        """
        tally = self._events[name]
        if count == 1:
            next(tally.counter)
        else:
            tally.add(count)

    def observe(self, op: str, seconds: float) -> None:
        """Record how long one `op` took."""
        latency = self._latency.get(op)
        if latency is None:
            latency = self.latency(op)
        latency.observe(seconds)

    def latency(self, op: str) -> Latency:
        """The duration histogram of `op` (created on first use)."""
        with self._lock:
            return self._latency.setdefault(op, Latency(self.bounds, self.recent))

    def error(self, op: str) -> None:
        """Count a failed `op` (the cache's error path; a backend error is counted once)."""
        tally = self._errors.get(op)
        if tally is None:
            with self._lock:
                tally = self._errors.setdefault(op, Tally())
        next(tally.counter)

    def fault(self, op: str, exc: BaseException) -> None:
        """An exception left a cache's `op`; its backend errors were counted already.

        The cache's error handling (``_failed``, where the error policy is asked) counts a
        backend error once, whether it is then raised or absorbed.
        """
        if not isinstance(exc, BackendError):
            self.failed(op, exc)

    def failed(self, op: str, exc: BaseException) -> None:
        """Count an `op` that raised `exc`: an error, or a cancellation (not an error)."""
        if isinstance(exc, Exception):
            self.error(op)
        elif op in self._cancelled:
            next(self._cancelled[op].counter)

    def should_time(self, op: str) -> bool:
        """Whether to time this `op` call, counting it (one call in `sample_every` is timed)."""
        n = next(self.calls[op].counter)
        if n < self._next_timed[op]:
            return False
        self._next_timed[op] = n + self.sample_every
        return True

    def lock_wait(self, seconds: float) -> None:
        """A ``cache_result(lock=True)`` load waited `seconds` for the distributed lock."""
        self.event("lock_wait")
        self.observe("lock_wait", seconds)

    # --- the guide's recording API (MonitoredCache style) --------------------------------
    def record_get(self, hit: bool, seconds: float | None = None) -> None:
        """Count one ``get`` that found (`hit`) or missed its key, optionally timed."""
        next(self.calls["get"].counter)
        if not hit:
            next(self.get_misses.counter)
        if seconds is not None:
            self.observe("get", seconds)

    def record_hit(self, seconds: float | None = None) -> None:
        self.record_get(True, seconds)

    def record_miss(self, seconds: float | None = None) -> None:
        self.record_get(False, seconds)

    def record_set(self, seconds: float | None = None) -> None:
        """Count one successful ``set``, optionally timed."""
        next(self.calls["set"].counter)
        if seconds is not None:
            self.observe("set", seconds)

    # --- reading -------------------------------------------------------------------------
    def raw(self) -> RawMetrics:
        """The counters as plain numbers (mergeable; what `snapshot` is computed from)."""
        counts: dict[str, int] = {}
        for op, tally in self.calls.items():
            counts[f"calls.{op}"] = tally.value
        for op, sampled in self.sampled.items():
            counts[f"calls.{op}"] += sampled.value
        for op, tally in list(self._errors.items()):
            counts[f"errors.{op}"] = tally.value
        for op, tally in self._cancelled.items():
            counts[f"cancelled.{op}"] = tally.value
        for name, tally in self._events.items():
            counts[f"event.{name}"] = tally.value
        counts["get_misses"] = self.get_misses.value
        latency = {op: lat.data() for op, lat in list(self._latency.items())}
        return RawMetrics(self.namespace, counts, latency)

    def snapshot(self) -> CacheStats:
        """The figures now: counts, hit ratio, and per-operation timings."""
        return self.raw().stats()

    @property
    def hits(self) -> int:
        return self.snapshot().hits

    @property
    def misses(self) -> int:
        return self.snapshot().misses

    @property
    def hit_ratio(self) -> float:
        return self.snapshot().hit_ratio

    def __repr__(self) -> str:
        stats = self.snapshot()
        return (
            f"CacheMetrics(namespace={self.namespace!r}, hits={stats.hits}, "
            f"misses={stats.misses}, hit_ratio={stats.hit_ratio:.3f})"
        )


@dataclass(frozen=True)
class OpStats:
    """One operation kind: how many calls ended how, and how long the timed ones took.

    Durations are seconds; ``None`` until an operation of this kind was timed. ``p50``,
    ``p95`` and ``p99`` cover the recent timed calls (the last 1,024 by default), ``avg``
    and ``max`` every timed call since start.
    """

    calls: int
    #: Calls by outcome: ``hit``/``miss`` (``get``) or ``ok``, then ``error``, ``cancelled``.
    results: Mapping[str, int]
    timed: int = 0
    total_seconds: float = 0.0
    avg: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    #: Histogram: upper bounds, and observations per bucket (one more: above every bound).
    bounds: tuple[float, ...] = ()
    buckets: tuple[int, ...] = ()

    @property
    def errors(self) -> int:
        return self.results.get("error", 0)


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of one namespace's metrics (SPEC §10: hits, misses, ratio, times)."""

    namespace: str
    hits: int = 0
    misses: int = 0
    sets: int = 0
    deletes: int = 0
    errors: int = 0
    stale_served: int = 0
    lock_waits: int = 0
    coalesced: int = 0
    bloom_rejections: int = 0
    operations: Mapping[str, OpStats] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Reads answered (hits + misses)."""
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float:
        """hits / (hits + misses); 0.0 before the first read."""
        return self.hits / self.requests if self.requests else 0.0

    #: The guide's names.
    hit_rate = hit_ratio
    total_requests = requests

    def avg_time(self, op: str = "get") -> float | None:
        """Average seconds of a timed `op`, or None if none was timed."""
        found = self.operations.get(op)
        return found.avg if found else None

    def event_counts(self) -> dict[str, int]:
        """Every event of `EVENTS` with its count."""
        return {
            "hit": self.hits,
            "miss": self.misses,
            "set": self.sets,
            "delete": self.deletes,
            "error": self.errors,
            "stale_served": self.stale_served,
            "lock_wait": self.lock_waits,
            "coalesced": self.coalesced,
            "bloom_rejection": self.bloom_rejections,
        }

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON and logs (durations in seconds)."""
        return {
            "namespace": self.namespace,
            **self.event_counts(),
            "hit_ratio": self.hit_ratio,
            "operations": {
                op: {
                    "calls": s.calls,
                    "results": dict(s.results),
                    "timed": s.timed,
                    "avg": s.avg,
                    "p50": s.p50,
                    "p95": s.p95,
                    "p99": s.p99,
                    "max": s.max,
                }
                for op, s in self.operations.items()
            },
        }


@dataclass(frozen=True)
class RawMetrics:
    """Counter values of one or more `CacheMetrics` of one namespace, before derivation."""

    namespace: str
    counts: Mapping[str, int]
    latency: Mapping[str, LatencyData]

    def merge(self, other: RawMetrics) -> RawMetrics:
        counts = dict(self.counts)
        for key, value in other.counts.items():
            counts[key] = counts.get(key, 0) + value
        latency = dict(self.latency)
        for op, data in other.latency.items():
            latency[op] = latency[op].merge(data) if op in latency else data
        return RawMetrics(self.namespace, counts, latency)

    def stats(self) -> CacheStats:
        """Derive the events: a plain ``get`` is counted once on entry, so its hits are the
        calls that neither missed nor failed (the hot path counts one thing, not two)."""
        c = self.counts

        def n(key: str) -> int:
            return c.get(key, 0)

        ops: dict[str, OpStats] = {}
        get_hits = n("calls.get") - n("get_misses") - n("errors.get") - n("cancelled.get")
        set_ok = n("calls.set") - n("errors.set") - n("cancelled.set")
        for op in OPERATIONS:
            calls = n(f"calls.{op}")
            failed = {"error": n(f"errors.{op}"), "cancelled": n(f"cancelled.{op}")}
            if op == "get":
                results = {"hit": get_hits, "miss": n("get_misses"), **failed}
            else:
                results = {"ok": calls - sum(failed.values()), **failed}
            ops[op] = _op_stats(calls, results, self.latency.get(op))
        if "lock_wait" in self.latency:
            waits = n("event.lock_wait")
            ops["lock_wait"] = _op_stats(waits, {"ok": waits}, self.latency["lock_wait"])
        errors = sum(v for k, v in c.items() if k.startswith("errors."))
        return CacheStats(
            namespace=self.namespace,
            hits=get_hits + n("event.hit"),
            misses=n("get_misses") + n("event.miss"),
            sets=set_ok + n("event.set"),
            deletes=n("event.delete"),
            errors=errors,
            stale_served=n("event.stale_served"),
            lock_waits=n("event.lock_wait"),
            coalesced=n("event.coalesced"),
            bloom_rejections=n("event.bloom_rejection"),
            operations=ops,
        )


def _op_stats(calls: int, results: dict[str, int], data: LatencyData | None) -> OpStats:
    if data is None or data.count == 0:
        return OpStats(calls, results)
    recent = sorted(data.recent)
    return OpStats(
        calls,
        results,
        timed=data.count,
        total_seconds=data.total,
        avg=data.total / data.count,
        p50=percentile(recent, 0.50),
        p95=percentile(recent, 0.95),
        p99=percentile(recent, 0.99),
        max=data.max,
        bounds=data.bounds,
        buckets=data.buckets,
    )


def collect(metrics: Iterable[CacheMetrics]) -> list[CacheStats]:
    """One `CacheStats` per namespace, the caches that share a namespace added together."""
    by_namespace: dict[str, RawMetrics] = {}
    for m in metrics:
        raw = m.raw()
        found = by_namespace.get(raw.namespace)
        by_namespace[raw.namespace] = raw if found is None else found.merge(raw)
    return [by_namespace[ns].stats() for ns in sorted(by_namespace)]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def format_stats(all_stats: Iterable[CacheStats]) -> str:
    """A plain-text report: per namespace, the events, then each operation's timings."""
    blocks = []
    for s in all_stats:
        lines = [
            f"namespace {s.namespace}: {s.hits:,} hits, {s.misses:,} misses "
            f"(hit ratio {s.hit_ratio:.1%}), {s.sets:,} sets, {s.deletes:,} deletes, "
            f"{s.errors:,} errors",
            f"  stale served {s.stale_served:,}, coalesced {s.coalesced:,}, lock waits "
            f"{s.lock_waits:,}, bloom rejections {s.bloom_rejections:,}",
            f"  {'operation':<15}{'calls':>10}{'errors':>8}{'timed':>10}"
            + "".join(f"{h:>12}" for h in ("avg", "p50", "p95", "p99")),
        ]
        for op, o in s.operations.items():
            if not o.calls and not o.timed:
                continue
            times = "".join(f"{_duration(t):>12}" for t in (o.avg, o.p50, o.p95, o.p99))
            lines.append(f"  {op:<15}{o.calls:>10,}{o.errors:>8,}{o.timed:>10,}{times}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "(no cache metrics)"


def live_metrics() -> list[CacheMetrics]:
    """Every `CacheMetrics` of this process still in use (by a cache, a sink, or you)."""
    with _LIVE_LOCK:
        return list(_LIVE)


def __getattr__(name: str) -> Any:
    # MonitoredCache lives in its own module (it wraps caches; this one only counts).
    if name in ("MonitoredCache", "SyncMonitoredCache"):
        from . import metrics_monitored

        return getattr(metrics_monitored, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EVENTS",
    "OPERATIONS",
    "CacheMetrics",
    "CacheStats",
    "MonitoredCache",
    "OpStats",
    "SyncMonitoredCache",
    "collect",
    "format_stats",
    "live_metrics",
]
