"""The circuit breaker: its state machine on a fake clock, `BreakerBackend`'s delegation,
reads failing open and locks failing closed through it, the error hook, the config form."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest
from cachemesh import (
    MISSING,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    Cache,
    CacheBackend,
    CacheConfig,
    CacheError,
    ConfigError,
    DistributedLock,
    ErrorDecision,
    LockError,
    LockUnavailable,
    SyncCache,
    SyncDistributedLock,
    UnknownComponentError,
    hookimpl,
)
from cachemesh.breaker import CircuitBreaker, CircuitOpenError, CircuitState, Transition
from cachemesh.breaker_backend import BreakerBackend, LockingBreakerBackend
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.plugins import get_registry
from cachemesh.testing import BackendConformance, FakeClock

Register = Callable[..., str]
DOWN = BackendUnavailableError("fake store unreachable")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_timeout=10, name="fake", clock=clock)


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.on_failure(breaker.before_call(), DOWN)


# --- the state machine ---------------------------------------------------------------------
def test_opens_after_the_threshold_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    breaker.on_success(breaker.before_call())  # a success resets the count
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    fail(breaker)
    assert breaker.state is CircuitState.OPEN
    assert breaker.opened == 1
    assert breaker.failures == 5


def test_open_refuses_at_once_until_the_cool_down_ends(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(4)
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_call()
    error = info.value
    assert isinstance(error, BackendUnavailableError)  # every unreachable-store path applies
    assert error.retry_in == pytest.approx(6)
    assert "'fake'" in str(error) and "BackendUnavailableError" in str(error)
    assert breaker.retry_in() == pytest.approx(6)
    assert breaker.rejected == 1


def test_half_open_lets_exactly_one_probe_through_and_success_closes(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(10)
    probe = breaker.before_call()
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError, match="probe"):
        breaker.before_call()  # a second caller while the probe runs
    breaker.on_success(probe)
    assert breaker.state is CircuitState.CLOSED
    breaker.on_success(breaker.before_call())


def test_a_failed_probe_reopens_for_a_fresh_cool_down(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(10)
    breaker.on_failure(breaker.before_call(), DOWN)
    assert breaker.state is CircuitState.OPEN
    clock.advance(9.9)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(0.1)
    breaker.on_success(breaker.before_call())
    assert breaker.state is CircuitState.CLOSED
    assert breaker.opened == 2


def test_transitions_are_recorded_with_the_clock_and_announced(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    seen: list[Transition] = []
    breaker.add_listener(seen.append)
    fail(breaker, 3)
    clock.advance(10)
    breaker.on_success(breaker.before_call())
    assert [(t.at, t.old.value, t.new.value) for t in breaker.transitions] == [
        (1000.0, "closed", "open"),
        (1010.0, "open", "half-open"),
        (1010.0, "half-open", "closed"),
    ]
    assert seen == list(breaker.transitions)
    assert breaker.transitions[0].reason == "3 consecutive failures"


def test_a_raising_listener_is_logged_not_raised(
    breaker: CircuitBreaker, caplog: pytest.LogCaptureFixture
) -> None:
    def bad(transition: Transition) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(bad)
    with caplog.at_level(logging.ERROR, "cachemesh.breaker"):
        fail(breaker, 3)
    assert breaker.state is CircuitState.OPEN
    assert "listener" in caplog.text


def test_results_of_calls_admitted_in_an_earlier_state_are_ignored(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    early = [breaker.before_call() for _ in range(5)]  # in flight when the store hangs
    for ticket in early[:3]:
        breaker.on_failure(ticket, DOWN)
    assert breaker.state is CircuitState.OPEN
    clock.advance(5)
    breaker.on_failure(early[3], DOWN)  # a late failure does not push the probe out
    clock.advance(5)
    probe = breaker.before_call()
    breaker.on_success(early[4])  # a late success does not close while the probe runs
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.on_failure(probe, DOWN)
    assert breaker.state is CircuitState.OPEN


def test_an_abandoned_probe_frees_its_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    breaker.on_abandon(breaker.before_call())  # e.g. the probing task was cancelled
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.on_success(breaker.before_call())
    assert breaker.state is CircuitState.CLOSED


def test_a_probe_that_never_returns_is_replaced_after_reset_timeout(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(10)
    lost = breaker.before_call()
    clock.advance(9)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(1)
    second = breaker.before_call()
    breaker.on_success(lost)  # too late: it no longer speaks for the circuit
    assert breaker.state is CircuitState.HALF_OPEN
    breaker.on_success(second)
    assert breaker.state is CircuitState.CLOSED


def test_reset_and_trip_by_hand(breaker: CircuitBreaker) -> None:
    breaker.trip()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    breaker.reset()
    assert breaker.state is CircuitState.CLOSED
    breaker.on_success(breaker.before_call())


@pytest.mark.parametrize(
    ("threshold", "reset"),
    [(0, 5), (True, 5), (1.5, 5), (3, 0), (3, -1), (3, float("inf")), (3, "5")],
)
def test_invalid_options_are_refused(threshold: Any, reset: Any) -> None:
    with pytest.raises(ConfigError, match=r"failure_threshold|reset_timeout"):
        CircuitBreaker(threshold, reset)


def test_clock_must_be_callable() -> None:
    with pytest.raises(TypeError, match="clock"):
        CircuitBreaker(clock=3.0)  # type: ignore[arg-type]


def test_threads_half_open_admits_a_single_probe(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10)
    admitted: list[int] = []
    refused: list[int] = []
    barrier = threading.Barrier(16)

    def call() -> None:
        barrier.wait()
        try:
            admitted.append(breaker.before_call())
        except CircuitOpenError:
            refused.append(1)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(admitted) == 1 and len(refused) == 15


def test_threads_hammering_keep_the_counts_consistent() -> None:
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout=0.001)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        try:
            for i in range(2000):
                try:
                    ticket = breaker.before_call()
                except CircuitOpenError:
                    continue
                if (i * 7 + seed) % 3 == 0:
                    breaker.on_failure(ticket, DOWN)
                else:
                    breaker.on_success(ticket)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for before, after in zip(breaker.transitions, list(breaker.transitions)[1:], strict=False):
        assert before.new is after.old  # every recorded change starts where the last ended


# --- BreakerBackend ------------------------------------------------------------------------
class Recorder(CacheBackend):
    """Answers every call with a value naming the method, and records it."""

    name: ClassVar[str] = "recorder"

    def __init__(self, options: Any = None, *, config: Any, registry: Any = None) -> None:
        super().__init__(options, config=config, registry=registry)
        self.calls: list[str] = []
        self.client = "the inner client"


def _recording(method: str) -> Any:
    if method.startswith("a") and method[1:] in _SYNC:

        async def arecord(self: Recorder, *args: Any) -> str:
            self.calls.append(method)
            return method

        return arecord

    def record(self: Recorder, *args: Any) -> str:
        self.calls.append(method)
        return method

    return record


_SYNC = [
    "get", "get_many", "get_many_payloads", "set", "set_many", "add", "delete",
    "delete_many", "exists", "incr", "ttl", "expire", "delete_pattern", "ping", "close",
    "lock_acquire", "lock_release", "lock_extend", "lock_owner",
]  # fmt: skip
_ALL = _SYNC + [f"a{m}" for m in _SYNC]
for _method in _ALL:
    setattr(Recorder, _method, _recording(_method))
Recorder.__abstractmethods__ = frozenset()


def _dummy_args(method: Callable[..., Any]) -> list[Any]:
    return ["x"] * len(inspect.signature(method).parameters)


async def test_breaker_backend_delegates_every_method_sync_and_async() -> None:
    inner = Recorder(config=CacheConfig())
    wrapper = BreakerBackend(inner)
    assert isinstance(wrapper, LockingBreakerBackend)  # the inner one hosts locks
    for name in _ALL:
        method = getattr(wrapper, name)
        result = method(*_dummy_args(method))
        if inspect.isawaitable(result):
            result = await result
        if name not in ("close", "aclose", "set", "aset", "set_many", "aset_many", "ping", "aping"):
            assert result == name
    assert inner.calls == _ALL
    assert wrapper.breaker.failures == 0


def test_the_wrapper_looks_like_the_backend_it_wraps() -> None:
    inner = Recorder({}, config=CacheConfig(CACHE_KEY_PREFIX="p"))
    wrapper = BreakerBackend(inner)
    assert wrapper.name == "recorder"
    assert wrapper.options is inner.options
    assert wrapper.config is inner.config
    assert wrapper.stores_objects is inner.stores_objects
    assert wrapper.client == "the inner client"  # other attributes are the inner one's
    assert wrapper.breaker.name == "recorder"
    assert "Recorder" in repr(wrapper) and "closed" in repr(wrapper)
    with pytest.raises(AttributeError):
        _ = wrapper.no_such_attribute
    with pytest.raises(TypeError, match="CacheBackend"):
        BreakerBackend(object())  # type: ignore[arg-type]


class NoLocks(Recorder):
    name: ClassVar[str] = "no-locks"


for _method in ("lock_acquire", "lock_release", "lock_extend", "lock_owner"):
    setattr(NoLocks, _method, getattr(CacheBackend, _method))
    setattr(NoLocks, f"a{_method}", getattr(CacheBackend, f"a{_method}"))


def test_a_backend_without_lock_primitives_stays_without_them() -> None:
    wrapper = BreakerBackend(NoLocks(config=CacheConfig()))
    assert type(wrapper) is BreakerBackend
    cache = SyncCache(CacheConfig(), backend=wrapper)
    with pytest.raises(LockError, match="no-locks"):
        SyncDistributedLock(cache, "job")


# --- a store that goes down ----------------------------------------------------------------
class Downable(MemoryBackend):
    """The memory backend with a switch: while `down`, every call raises (after `delay`).

    With `hold` set, a call while down blocks until the event is set (a hung store that
    a test releases when it chooses), and the blocked threads' names go to `held`.
    """

    name: ClassVar[str] = "downable"
    error: ClassVar[type[BackendError]] = BackendUnavailableError

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = False
        self.delay = 0.0
        self.hold: threading.Event | None = None
        self.held: list[str] = []
        self.calls = 0


def _guarded(method: str) -> Any:
    original = getattr(MemoryBackend, method)

    def call(self: Downable, *args: Any) -> Any:
        self.calls += 1
        if self.down:
            if self.delay:
                time.sleep(self.delay)
            hold = self.hold
            if hold is not None:
                self.held.append(threading.current_thread().name)
                hold.wait(30)
            raise self.error(f"downable: {method} failed, store unreachable")
        return original(self, *args)

    return call


for _method in (
    "get", "get_many", "set", "set_many", "add", "delete", "delete_many", "exists", "incr",
    "ttl", "expire", "delete_pattern", "ping",
    "lock_acquire", "lock_release", "lock_extend", "lock_owner",
):  # fmt: skip
    setattr(Downable, _method, _guarded(_method))


class DownablePlugin:
    @hookimpl
    def cachemesh_register_backends(self) -> list[type]:
        return [Downable]


def breaker_cache(
    pm: pluggy.PluginManager, threshold: int = 2, reset: float = 60, **settings: Any
) -> SyncCache:
    config = CacheConfig(
        CACHE_BACKEND="downable",
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={"failure_threshold": threshold, "reset_timeout": reset},
        **settings,
    )
    return SyncCache(config, plugin_manager=pm, registry=get_registry(pm))


@pytest.fixture
def pm(plugin_manager: pluggy.PluginManager, register_plugin: Register) -> pluggy.PluginManager:
    register_plugin(DownablePlugin(), name="downable-plugin")
    return plugin_manager


def test_config_form_wraps_the_backend(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm, threshold=4, reset=2.5)
    assert isinstance(cache.backend, LockingBreakerBackend)
    assert isinstance(cache.backend.inner, Downable)
    assert cache.backend.breaker.failure_threshold == 4
    assert cache.backend.breaker.reset_timeout == 2.5
    assert repr(cache).startswith("SyncCache(backend='downable'")
    assert cache.set("k", {"v": 1}) and cache.get("k") == {"v": 1}


def test_reads_fail_open_and_stop_reaching_the_store(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm, CACHE_ON_BACKEND_ERROR="miss")
    inner: Downable = cache.backend.inner
    cache.set("k", "v")
    inner.down = True
    calls = inner.calls
    answers = [cache.get("k", "default") for _ in range(50)]
    assert answers == ["default"] * 50
    assert inner.calls - calls == 2  # the threshold; the other 48 never reached the store
    assert cache.backend.breaker.state is CircuitState.OPEN
    assert cache.absorbed_errors == 50
    assert cache.get_many(["k", "j"]) == [None, None]
    assert cache.exists("k") is False


def test_an_outage_costs_one_timeout_not_one_per_call(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm, threshold=3, CACHE_ON_BACKEND_ERROR="miss")
    inner: Downable = cache.backend.inner
    inner.down, inner.delay, inner.error = True, 0.05, BackendTimeoutError  # a hung store
    started = time.monotonic()
    for _ in range(40):
        assert cache.get("k") is None
    elapsed = time.monotonic() - started
    assert inner.calls == 3  # three calls waited out the hang; the other 37 never left
    # Without the breaker: 40 x 0.05 = 2 s of waiting alone. (The bound used to be 0.65 s:
    # too tight for a loaded machine; the call count above is the exact check.)
    assert elapsed < 40 * 0.05


def test_raise_policy_gets_the_typed_error_at_once(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm)
    cache.backend.inner.down = True
    for _ in range(2):
        with pytest.raises(BackendUnavailableError, match="downable"):
            cache.get("k")
    with pytest.raises(CircuitOpenError, match="circuit open for backend 'downable'"):
        cache.get("k")


def test_the_store_back_closes_the_circuit_after_one_probe(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm, reset=0.05, CACHE_ON_BACKEND_ERROR="miss")
    inner: Downable = cache.backend.inner
    inner.down = True
    for _ in range(3):
        cache.get("k")
    inner.down = False
    time.sleep(0.06)
    cache.set("k", "back")
    assert cache.backend.breaker.state is CircuitState.CLOSED
    assert cache.get("k") == "back"


def test_a_cache_error_that_is_not_a_backend_error_counts_as_an_answer(
    pm: pluggy.PluginManager,
) -> None:
    cache = breaker_cache(pm, threshold=1)
    cache.set("text", "not a number")
    for _ in range(3):
        with pytest.raises(CacheError):
            cache.incr("text")
    assert cache.backend.breaker.state is CircuitState.CLOSED


def test_hook_decides_miss_while_the_circuit_is_open(
    pm: pluggy.PluginManager, register_plugin: Register
) -> None:
    seen: list[tuple[str, str, str]] = []

    class ReadsAreMisses:
        @hookimpl
        def cachemesh_on_backend_error(
            self,
            backend: str,
            operation: str,
            key: str,
            error: BaseException,
            config: CacheConfig,
        ) -> ErrorDecision | None:
            seen.append((backend, operation, type(error).__name__))
            return ErrorDecision.MISS if operation in ("get", "get_many") else None

    register_plugin(ReadsAreMisses(), name="reads-are-misses")
    cache = breaker_cache(pm)  # CACHE_ON_BACKEND_ERROR stays "raise"
    inner: Downable = cache.backend.inner
    cache.set("k", "v")
    inner.down = True
    assert [cache.get("k", "miss") for _ in range(5)] == ["miss"] * 5
    assert cache.backend.breaker.state is CircuitState.OPEN
    assert inner.calls == 3  # the set, then two failing gets; the rest never left
    assert seen[-1] == ("downable", "get", "CircuitOpenError")
    with pytest.raises(CircuitOpenError):
        cache.set("k", "w")  # the hook leaves writes to the default policy: raise


async def test_async_calls_through_the_breaker(pm: pluggy.PluginManager) -> None:
    config = CacheConfig(
        CACHE_BACKEND="downable",
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={"failure_threshold": 2},
        CACHE_ON_BACKEND_ERROR="miss",
    )
    cache = Cache(config, plugin_manager=pm, registry=get_registry(pm))
    inner: Downable = cache.backend.inner
    assert await cache.set("k", "v") and await cache.get("k") == "v"
    inner.down = True
    results = await asyncio.gather(*(cache.get("k") for _ in range(100)))
    assert results == [None] * 100
    assert inner.calls == 2 + 2


async def test_a_cancelled_probe_lets_the_next_call_probe(pm: pluggy.PluginManager) -> None:
    breaker = CircuitBreaker(1, 0.01)
    started = asyncio.Event()

    class Slow(MemoryBackend):
        async def aget(self, key: str) -> Any:
            started.set()
            await asyncio.sleep(10)
            return MISSING

    wrapper = BreakerBackend(Slow(config=CacheConfig()), breaker)
    breaker.trip()
    await asyncio.sleep(0.02)
    probe = asyncio.ensure_future(wrapper.aget("k"))
    await started.wait()
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert await wrapper.aexists("k") is False  # admitted as the new probe
    assert breaker.state is CircuitState.CLOSED


# --- locks fail closed ---------------------------------------------------------------------
def test_sync_lock_fails_closed_through_an_open_circuit(pm: pluggy.PluginManager) -> None:
    cache = breaker_cache(pm, CACHE_ON_BACKEND_ERROR="miss")
    inner: Downable = cache.backend.inner
    with SyncDistributedLock(cache, "job", timeout=5) as lock:
        assert lock.acquired
    inner.down = True
    with pytest.raises(LockUnavailable, match="NOT held"):
        SyncDistributedLock(cache, "job", timeout=5).acquire()
    assert cache.backend.breaker.state is CircuitState.OPEN
    calls = inner.calls
    lock = SyncDistributedLock(cache, "job", timeout=5)
    with pytest.raises(LockUnavailable, match="circuit open"):
        lock.acquire()
    assert not lock.acquired
    assert inner.calls == calls  # refused without a call


async def test_async_lock_fails_closed_through_an_open_circuit(pm: pluggy.PluginManager) -> None:
    config = CacheConfig(
        CACHE_BACKEND="downable",
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={"failure_threshold": 1},
    )
    cache = Cache(config, plugin_manager=pm, registry=get_registry(pm))
    cache.backend.breaker.trip()
    lock = DistributedLock(cache, "job", timeout=5)
    with pytest.raises(LockUnavailable, match="circuit open"):
        async with lock:
            pytest.fail("the body must not run without the lock")
    assert not lock.acquired
    assert cache.backend.inner.calls == 0


# --- config errors -------------------------------------------------------------------------
def test_unknown_policy_name_suggests_the_right_one(plugin_manager: pluggy.PluginManager) -> None:
    with pytest.raises(UnknownComponentError, match="Did you mean 'circuit-breaker'"):
        SyncCache(CacheConfig(CACHE_FALLBACK="circuit-breakr"), plugin_manager=plugin_manager)


def test_bad_options_name_the_key_and_the_allowed_options(
    plugin_manager: pluggy.PluginManager,
) -> None:
    config = CacheConfig(
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={"failure_threshold": 0, "reset_timout": 1},
    )
    with pytest.raises(ConfigError) as info:
        SyncCache(config, plugin_manager=plugin_manager)
    message = str(info.value)
    assert "fallback_options.failure_threshold = 0" in message
    assert "fallback_options.reset_timout" in message
    assert "failure_threshold (int), reset_timeout (float)" in message


def test_options_without_a_policy_are_an_error(plugin_manager: pluggy.PluginManager) -> None:
    config = CacheConfig(CACHE_FALLBACK_OPTIONS={"failure_threshold": 3})
    with pytest.raises(ConfigError, match="no fallback policy is named"):
        SyncCache(config, plugin_manager=plugin_manager)


def test_a_policy_class_without_wrap_is_refused(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class NeverFallBack:
        name: ClassVar[str] = "never"

    class Plugin:
        @hookimpl
        def cachemesh_register_fallback_policies(self) -> list[type]:
            return [NeverFallBack]

    register_plugin(Plugin(), name="never-plugin")
    with pytest.raises(ConfigError, match=r"never-plugin.*not a usable fallback policy"):
        SyncCache(CacheConfig(CACHE_FALLBACK="never"), plugin_manager=plugin_manager)


def test_config_file_form(make_config: Callable[..., CacheConfig]) -> None:
    config = make_config(
        'fallback = "circuit-breaker"\n[fallback_options]\nfailure_threshold = 7\n'
        "reset_timeout = 1.5\n"
    )
    assert config.CACHE_FALLBACK == "circuit-breaker"
    cache = SyncCache(config)
    assert cache.backend.breaker.failure_threshold == 7
    assert cache.backend.breaker.reset_timeout == 1.5


# --- every backend behaviour still holds behind the breaker ----------------------------------
class TestMemoryBehindTheBreaker(BackendConformance):
    backend = "memory"
    settings: ClassVar[dict[str, Any]] = {"CACHE_FALLBACK": "circuit-breaker"}


class TestSerializingMemoryBehindTheBreaker(BackendConformance):
    backend = "memory"
    backend_options: ClassVar[dict[str, Any]] = {"serialize": True}
    settings: ClassVar[dict[str, Any]] = {"CACHE_FALLBACK": "circuit-breaker"}


# --- stall detection and background probes -------------------------------------------------
def test_a_stall_opens_the_circuit_before_any_call_fails(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10, name="fake", clock=clock, stall_timeout=0.05)
    ok = breaker.before_call()
    clock.advance(0.01)
    breaker.on_success(ok)  # answers arrive: no stall
    hung = [breaker.before_call() for _ in range(3)]  # in flight when the store hangs
    clock.advance(0.04)
    late = breaker.before_call()  # 0.04 s of silence: still under the stall timeout
    clock.advance(0.02)
    later = breaker.before_call()  # 0.06 s: a stall is suspected, not yet sure
    clock.advance(0.01)
    assert breaker.state is CircuitState.CLOSED
    clock.advance(0.005)
    with pytest.raises(CircuitOpenError, match="circuit open"):
        breaker.before_call()  # still silent a quarter of stall_timeout later: hung
    assert breaker.state is CircuitState.OPEN
    assert "no answer for 0.075s with 5 call(s) waiting" in breaker.transitions[-1].reason
    for ticket in [*hung, late, later]:  # their timeouts arrive later: stale, ignored
        breaker.on_failure(ticket, DOWN)
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(10)


def test_silence_with_nothing_in_flight_is_not_a_stall(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10, clock=clock, stall_timeout=0.05)
    breaker.on_success(breaker.before_call())
    clock.advance(60)  # idle for a minute
    first = breaker.before_call()  # a busy spell starts now
    clock.advance(0.03)
    second = breaker.before_call()
    assert breaker.state is CircuitState.CLOSED
    breaker.on_success(first)
    clock.advance(0.04)  # 0.07 s since `second` started, but `first` answered 0.04 s ago
    breaker.on_success(breaker.before_call())
    breaker.on_success(second)
    assert breaker.state is CircuitState.CLOSED


def test_a_process_that_was_not_scheduled_does_not_trip_the_stall(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10, clock=clock, stall_timeout=0.05)
    waiting = [breaker.before_call() for _ in range(2)]
    clock.advance(0.6)  # a GC pause: the answers are in the socket, not read yet
    breaker.on_success(breaker.before_call())  # first sighting only: admitted
    clock.advance(0.001)
    for ticket in waiting:  # the event loop reads the waiting answers
        breaker.on_success(ticket)
    clock.advance(0.02)
    breaker.on_success(breaker.before_call())
    assert breaker.state is CircuitState.CLOSED and breaker.opened == 0


def test_without_stall_timeout_a_hang_opens_only_after_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 10, clock=clock)
    [breaker.before_call() for _ in range(3)]
    clock.advance(5)
    breaker.before_call()
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize("stall", [0, -1, float("inf"), "0.1", True])
def test_invalid_stall_timeout_is_refused(stall: Any) -> None:
    with pytest.raises(ConfigError, match="stall_timeout="):
        CircuitBreaker(stall_timeout=stall)
    with pytest.raises(TypeError, match="background_probe"):
        CircuitBreaker(background_probe="yes")  # type: ignore[arg-type]


def test_background_probe_refuses_the_caller_and_hands_out_a_ticket(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 10, clock=clock, background_probe=True)
    breaker.on_failure(breaker.before_call(), DOWN)
    clock.advance(10)
    with pytest.raises(CircuitOpenError) as refused:
        breaker.before_call()
    ticket = refused.value.probe_ticket
    assert ticket is not None and breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError) as again:
        breaker.before_call()  # the probe is out: refused, no second probe
    assert again.value.probe_ticket is None
    breaker.on_success(ticket)
    assert breaker.state is CircuitState.CLOSED
    assert "background_probe=True" in repr(breaker)


def test_sync_background_probe_pings_in_a_thread(pm: pluggy.PluginManager) -> None:
    config = CacheConfig(
        CACHE_BACKEND="downable",
        CACHE_FALLBACK="circuit-breaker",
        CACHE_FALLBACK_OPTIONS={
            "failure_threshold": 1,
            "reset_timeout": 0.05,
            "background_probe": True,
        },
        CACHE_ON_BACKEND_ERROR="miss",
    )
    cache = SyncCache(config, plugin_manager=pm, registry=get_registry(pm))
    inner: Downable = cache.backend.inner
    breaker: CircuitBreaker = cache.backend.breaker
    assert cache.set("k", "v")
    inner.down = True
    assert cache.get("k") is None  # the one call that opens the circuit fails
    assert breaker.state is CircuitState.OPEN
    # From now on the store hangs until `hung` is set. The caller is refused at once,
    # shown without a clock (a 0.1 s wall-clock bound is at the mercy of a loaded
    # machine): had it waited for the store, its own thread would be in `held`.
    hung = inner.hold = threading.Event()
    time.sleep(0.06)  # past reset_timeout: the next call starts the probe
    assert cache.get("k") is None  # triggers the probe, is refused at once
    assert threading.current_thread().name not in inner.held
    deadline = time.monotonic() + 5
    while not inner.held and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inner.held == ["cachemesh-breaker-probe"]  # the ping hangs in the probe thread
    assert breaker.state is CircuitState.HALF_OPEN
    hung.set()
    deadline = time.monotonic() + 5
    while breaker.state is not CircuitState.OPEN and time.monotonic() < deadline:
        time.sleep(0.01)
    assert breaker.state is CircuitState.OPEN  # the probe's ping failed
    inner.hold = None
    inner.down = False
    time.sleep(0.06)
    assert cache.get("k") is None  # refused: this call only starts the probe
    deadline = time.monotonic() + 5
    while breaker.state is not CircuitState.CLOSED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert breaker.state is CircuitState.CLOSED
    assert cache.get("k") == "v"


async def test_async_background_probe_runs_as_a_task(pm: pluggy.PluginManager) -> None:
    pings: list[str] = []

    class Pinged(MemoryBackend):
        async def aping(self) -> None:
            pings.append("ping")
            await asyncio.sleep(0.02)

    breaker = CircuitBreaker(1, 0.01, background_probe=True, stall_timeout=1)
    wrapper = BreakerBackend(Pinged(config=CacheConfig()), breaker)
    breaker.trip()
    await asyncio.sleep(0.02)
    with pytest.raises(CircuitOpenError):
        await wrapper.aget("k")
    assert breaker.state is CircuitState.HALF_OPEN and len(wrapper._probes) == 1
    await asyncio.gather(*wrapper._probes)
    assert pings == ["ping"] and breaker.state is CircuitState.CLOSED
    assert await wrapper.aget("k") is MISSING


async def test_closing_cancels_a_running_background_probe() -> None:
    class Hung(MemoryBackend):
        async def aping(self) -> None:
            await asyncio.sleep(30)

    breaker = CircuitBreaker(1, 0.01, background_probe=True)
    wrapper = BreakerBackend(Hung(config=CacheConfig()), breaker)
    breaker.trip()
    await asyncio.sleep(0.02)
    with pytest.raises(CircuitOpenError):
        await wrapper.aexists("k")
    started = time.monotonic()
    await wrapper.aclose()
    assert time.monotonic() - started < 10 and not wrapper._probes  # not the ping's 30 s
    assert breaker.state is CircuitState.HALF_OPEN  # abandoned: the next call probes


async def test_async_calls_waiting_when_the_circuit_opens_are_released(
    clock: FakeClock,
) -> None:
    # The breaker runs on the fake clock: with real sleeps, a loop late to start the
    # waiting calls (a loaded machine) could make the silence too short to confirm a stall.
    entered: list[str] = []

    class Hung(MemoryBackend):
        async def aget(self, key: str) -> Any:
            entered.append(key)
            await asyncio.sleep(30)
            return MISSING

    async def until_entered(count: int) -> None:
        while len(entered) < count:
            await asyncio.sleep(0.001)

    breaker = CircuitBreaker(100, 30, clock=clock, stall_timeout=0.05)
    wrapper = BreakerBackend(Hung(config=CacheConfig()), breaker)
    waiting = [asyncio.ensure_future(wrapper.aget(f"k{i}")) for i in range(3)]
    await asyncio.wait_for(until_entered(3), 10)
    clock.advance(0.06)
    suspect = asyncio.ensure_future(wrapper.aget("suspect"))  # first sighting: admitted
    await asyncio.wait_for(until_entered(4), 10)
    clock.advance(0.02)
    with pytest.raises(CircuitOpenError, match="stopped answering"):
        await wrapper.aget("confirm")
    for call in [*waiting, suspect]:
        with pytest.raises(BackendTimeoutError, match="released: the circuit opened"):
            await asyncio.wait_for(call, 10)  # released, not the 30 s each would wait
    assert breaker.state is CircuitState.OPEN and not wrapper._waiting
    assert breaker.failures == 4  # counted, but stale: the circuit stays open as it was


async def test_a_natural_timeout_is_not_mistaken_for_a_release() -> None:
    class Slow(MemoryBackend):
        async def aget(self, key: str) -> Any:
            raise BackendTimeoutError("slow: did not answer within 0.1s")

    wrapper = BreakerBackend(Slow(config=CacheConfig()), CircuitBreaker(5, 30, stall_timeout=1))
    with pytest.raises(BackendTimeoutError, match="did not answer"):
        await wrapper.aget("k")
