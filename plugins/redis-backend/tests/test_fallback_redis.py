"""SPEC §10's fallback cache with a circuit breaker, under a real Redis outage.

A redis-server of the test's own is hung (SIGSTOP) and, in a second test, shut down
(SHUTDOWN NOSAVE), each for 10 s, while 100 requests a second (nine gets for one set, on
50 hot keys) run through ``CacheWithFallback(redis behind a circuit breaker, memory)``.
What must hold:

* no exception reaches a caller;
* latency stays bounded by the op timeout (REDIS_SOCKET_TIMEOUT = 0.2 s, no read retries):
  only the calls already in flight when Redis hangs, and one probe per cool-down, wait it
  out, everything else is answered by the fallback at once;
* the breaker opens, half-opens (a probe per ``reset_timeout``) and closes once Redis is
  back; the state changes are recorded with their times.

The figures (count, p50/p99/max latency, time to open, time to close after recovery, how
many calls reached Redis during the outage) are printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from cachemesh import Cache, CacheConfig
from cachemesh.breaker import CircuitBreaker, CircuitState, Transition
from cachemesh.fallback_cache import CacheWithFallback

from .servers import RedisServer, async_cache, redis_config

StartServer = Callable[..., RedisServer]

TIMEOUT = 0.2  # REDIS_SOCKET_TIMEOUT and REDIS_CONNECTION_TIMEOUT: the op timeout
RATE = 100  # requests per second, started on a fixed schedule (open loop)
WARM_UP = 1.0
OUTAGE = 10.0
FAILURE_THRESHOLD = 3
RESET_TIMEOUT = 1.0
#: Scheduling slack of a busy 2-core machine on top of the op timeout: the event loop that
#: notices a timed-out call lags when the CPUs are shared (p99 0.204 s and max 0.232 s
#: under a CPU hog; elsewhere in this suite a 0.5 s timeout measured 0.96 s under load, a
#: stall the old 0.05 s could not absorb). Kept below TIMEOUT, so a call that waits out a
#: second op timeout (a retry, or queueing behind a hung call) still breaks the bounds.
SLACK = 0.15
HOT_KEYS = 50


@dataclass
class Sample:
    started: float
    latency: float
    operation: str
    error: BaseException | None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    fault_at: float = 0.0
    back_at: float = 0.0
    rejected: int = 0
    #: (monotonic start, seconds late) of each tick of `StallWatch`.
    stalls: list[tuple[float, float]] = field(default_factory=list)

    def window(self) -> list[Sample]:
        """The requests started while Redis was out."""
        return [s for s in self.samples if self.fault_at <= s.started < self.back_at]

    def stalled(self, start: float, end: float) -> float:
        """Seconds the process was held up by the machine between `start` and `end`."""
        return sum(
            late for began, late in self.stalls if began < end and began + STALL_TICK + late > start
        )

    def first(self, state: CircuitState, after: float) -> Transition | None:
        return next((t for t in self.transitions if t.new is state and t.at >= after), None)


#: The period of `StallWatch`'s ticks.
STALL_TICK = 0.01


class StallWatch:
    """A thread that sleeps `STALL_TICK` over and over and records how late it wakes.

    A late wake-up is time the machine did not run this process (2 shared cores, other
    suites, a CPU hog): every timing measured here grows by it. The single-event bounds
    (the slowest call, the time to open and to close) allow for the stalls observed while
    that event ran, rather than for a guessed worst case. A thread, not a task: the product
    blocking the event loop does not delay it (socket waits release the GIL), so such a
    bug is not excused.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)

    def _watch(self) -> None:
        while True:
            began = time.monotonic()
            if self.stop.wait(STALL_TICK):
                return
            late = time.monotonic() - began - STALL_TICK
            if late > 0.005:  # below that: ordinary timer and GIL hand-over jitter
                self.run.stalls.append((began, late))

    def __enter__(self) -> StallWatch:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def one_request(cache: CacheWithFallback, number: int, run: Run) -> None:
    key = f"hot:{number % HOT_KEYS}"
    operation = "set" if number % 10 == 0 else "get"
    started = time.monotonic()
    error: BaseException | None = None
    try:
        if operation == "set":
            await cache.set(key, {"n": number}, timeout=60)
        else:
            await cache.get(key)
    except Exception as exc:  # counted: none may reach a caller
        error = exc
    run.samples.append(Sample(started, time.monotonic() - started, operation, error))


async def drive(cache: CacheWithFallback, stop: asyncio.Event, run: Run) -> None:
    """Start RATE requests a second on a fixed schedule, whether earlier ones finished or not."""
    tasks: set[asyncio.Task[None]] = set()
    interval = 1 / RATE
    next_at = time.monotonic()
    number = 0
    while not stop.is_set():
        task = asyncio.create_task(one_request(cache, number, run))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        number += 1
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


def outage_config(server: RedisServer, **breaker_options: object) -> CacheConfig:
    return redis_config(
        {"read_retries": 0},  # the op timeout is then REDIS_SOCKET_TIMEOUT itself
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=server.port,
        REDIS_SOCKET_TIMEOUT=TIMEOUT,
        REDIS_CONNECTION_TIMEOUT=TIMEOUT,
        REDIS_MAX_CONNECTIONS=64,
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={
            "failure_threshold": FAILURE_THRESHOLD,
            "reset_timeout": RESET_TIMEOUT,
            **breaker_options,
        },
    )


async def run_outage(
    server: RedisServer,
    fault: Callable[[], None],
    recover: Callable[[], None],
    **breaker_options: object,
) -> tuple[Run, CircuitBreaker]:
    primary: Cache = async_cache(outage_config(server, **breaker_options))
    breaker: CircuitBreaker = primary.backend.breaker
    run = Run()
    breaker.add_listener(run.transitions.append)
    cache = CacheWithFallback(primary, Cache(CacheConfig(CACHE_KEY_PREFIX="fallback")))
    try:
        with StallWatch(run):
            await drive_outage(cache, breaker, run, fault, recover)
        assert await cache.set("after", 1) and await primary.get("after") == 1
    finally:
        await cache.close()
    return run, breaker


async def drive_outage(
    cache: CacheWithFallback,
    breaker: CircuitBreaker,
    run: Run,
    fault: Callable[[], None],
    recover: Callable[[], None],
) -> None:
    """Warm up, break Redis for OUTAGE seconds under load, bring it back, wait for CLOSED."""
    for i in range(HOT_KEYS):
        assert await cache.set(f"hot:{i}", {"n": i}, timeout=60)
    stop = asyncio.Event()
    driver = asyncio.create_task(drive(cache, stop, run))
    await asyncio.sleep(WARM_UP)
    rejected = breaker.rejected
    run.fault_at = time.monotonic()
    await asyncio.to_thread(fault)
    await asyncio.sleep(OUTAGE - (time.monotonic() - run.fault_at))
    await asyncio.to_thread(recover)
    run.back_at = time.monotonic()
    run.rejected = breaker.rejected - rejected
    deadline = run.back_at + RESET_TIMEOUT + TIMEOUT + 3
    while breaker.state is not CircuitState.CLOSED and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # traffic after recovery goes to Redis again
    stop.set()
    await driver
    assert breaker.state is CircuitState.CLOSED


def check_and_report(
    label: str,
    run: Run,
    report_figure: Callable[..., None],
    *,
    hung: bool,
    p99_limit: float = TIMEOUT + SLACK,
    open_limit: float | None = None,
) -> None:
    errors = [s.error for s in run.samples if s.error is not None]
    window = run.window()
    latencies = [s.latency for s in window]
    opened = run.first(CircuitState.OPEN, run.fault_at)
    closed = run.first(CircuitState.CLOSED, run.back_at)
    half_opens = [
        t
        for t in run.transitions
        if t.new is CircuitState.HALF_OPEN and run.fault_at <= t.at < run.back_at
    ]
    reached = len(window) - run.rejected  # requests whose primary call was not refused
    # Before the breaker opens every call reaches Redis; after, only its probes may.
    before_open = sum(1 for s in window if opened is None or s.started < opened.at)
    timeline = ", ".join(
        f"{t.at - run.fault_at:+.3f}s {t.old.value}->{t.new.value} ({t.reason})"
        for t in run.transitions
    )
    print(f"\n[{label}] transitions (s from the fault): {timeline}")
    print(
        f"[{label}] {len(run.samples)} requests, {len(window)} during the outage, "
        f"{len(errors)} exceptions; outage latency p50 {statistics.median(latencies) * 1000:.2f}"
        f" ms, p99 {percentile(latencies, 0.99) * 1000:.1f} ms, max {max(latencies) * 1000:.1f}"
        f" ms; {reached} calls reached Redis, {run.rejected} refused by the open circuit"
    )
    assert errors == [], errors[:3]
    assert len(window) >= 0.9 * RATE * OUTAGE, "the load generator fell behind"
    assert opened is not None, "the breaker never opened"
    assert closed is not None, "the breaker never closed after recovery"
    assert half_opens, "the breaker never half-opened during the outage"
    time_to_open = opened.at - run.fault_at
    time_to_close = closed.at - run.back_at
    report_figure(f"{label}: requests during the outage", len(window), "requests")
    report_figure(f"{label}: exceptions reaching callers", len(errors), "exceptions")
    report_figure(f"{label}: latency p50", statistics.median(latencies))
    report_figure(f"{label}: latency p99", percentile(latencies, 0.99))
    report_figure(f"{label}: latency max", max(latencies))
    report_figure(f"{label}: time to open", time_to_open)
    report_figure(f"{label}: half-open probes during the outage", len(half_opens), "probes")
    report_figure(f"{label}: calls reaching Redis during the outage", reached, "calls")
    report_figure(f"{label}: time to close after recovery", time_to_close)
    report_figure(
        f"{label}: machine stalls during the outage (sum)",
        run.stalled(run.fault_at, run.back_at),
    )
    assert percentile(latencies, 0.99) <= p99_limit
    # The slowest call: a new connection (connect + first read), plus what the machine
    # stalled this process while it ran (a probe measured 0.947 s, 0.5 s over, under two
    # CPU hogs). Measured per call, so a stall elsewhere excuses nothing.
    slowest = [
        s
        for s in window
        if s.latency > 2 * TIMEOUT + SLACK + run.stalled(s.started, s.started + s.latency)
    ]
    assert not slowest, [
        (s.operation, s.latency, run.stalled(s.started, s.started + s.latency)) for s in slowest
    ]
    # Hung: the first failures arrive one timeout after the fault. Down: at once.
    open_bound = open_limit or (TIMEOUT + 0.3 if hung else 0.3)
    assert time_to_open <= open_bound + run.stalled(run.fault_at, opened.at)
    assert time_to_close <= RESET_TIMEOUT + TIMEOUT + 0.5 + run.stalled(run.back_at, closed.at)
    # Once open, only the probes (one per half-open) reach Redis: far fewer calls than
    # requests. (Counted from the measured opening, not from a fixed RATE x TIMEOUT, which
    # a time to open within its own bound above could exceed.)
    assert reached - before_open <= len(half_opens) + FAILURE_THRESHOLD
    assert reached <= RATE * (TIMEOUT + 0.3) + FAILURE_THRESHOLD + OUTAGE / RESET_TIMEOUT + 5


@pytest.fixture
def server(redis_factory: StartServer) -> RedisServer:
    return redis_factory("fallback")


async def test_hung_redis_for_10s_under_100_rps(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    run, _ = await run_outage(server, server.pause, server.resume)
    check_and_report("fallback, Redis SIGSTOP 10s", run, report_figure, hung=True)


#: Hang detection for the last test: well above a loopback round trip under load.
STALL_TIMEOUT = 0.05


async def test_hung_redis_with_stall_detection_and_background_probes(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    """The same hang, with ``stall_timeout`` and ``background_probe``: only the calls that
    started in the first ``stall_timeout`` wait out the op timeout, and no caller waits for
    a probe, so the p99 stays under the op timeout itself, with no slack."""
    run, _ = await run_outage(
        server,
        server.pause,
        server.resume,
        stall_timeout=STALL_TIMEOUT,
        background_probe=True,
    )
    check_and_report(
        "fallback, Redis SIGSTOP 10s, stall_timeout 0.05s + background probes",
        run,
        report_figure,
        hung=True,
        p99_limit=TIMEOUT,
        open_limit=TIMEOUT,  # before the first op timeout could have
    )


async def test_redis_shut_down_for_10s_under_100_rps(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    run, _ = await run_outage(server, server.shutdown_nosave, server.restart)
    check_and_report("fallback, Redis SHUTDOWN 10s", run, report_figure, hung=False)
