"""Model-based tests of expiry, on a fake clock: nothing is ever served once its time is up.

Two machines. The first drives ``TTLCache`` directly; the second drives the memory backend
(through ``SyncCache``) on a ``TTLCache`` store, with a timeout per entry. Each keeps a
reference model (an OrderedDict in least-recently-used order, with expiry times) and checks
after every step that the store holds exactly what the model says, so a stale hit, a lost
live entry or a wrong eviction all fail the run. Times are whole or half seconds, so the
sums behind expiry are exact in floating point.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, NamedTuple

from cachemesh import MISSING, NO_EXPIRY, CacheConfig, SyncCache, new_plugin_manager
from cachemesh.builtins.memory import MemoryBackend
from cachemesh_ttl import TTLCache
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

SETTINGS = settings(max_examples=150, stateful_step_count=40, deadline=None, database=None)

KEYS = range(6)
keys = st.sampled_from(KEYS)
# Few distinct durations, so sums of steps often land exactly on an expiry time.
durations = [0.5, 1, 2, 3, 5, 10, 30]
steps = st.sampled_from(durations)
ttls = st.sampled_from(durations[1:])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Entry(NamedTuple):
    value: Any
    written: float
    expires: float  # the strategy's: written + default_ttl


class TTLStrategyModel(RuleBasedStateMachine):
    """``TTLCache`` against a model: live while now < written + ttl, LRU when full."""

    @initialize(ttl=ttls, max_size=st.integers(1, 5))
    def build(self, ttl: float, max_size: int) -> None:
        self.ttl, self.max_size = ttl, max_size
        self.clock = Clock()
        self.cache = TTLCache(default_ttl=ttl, max_size=max_size, clock=self.clock)
        self.model: OrderedDict[int, Entry] = OrderedDict()

    def live(self, entry: Entry) -> bool:
        return self.clock.now < entry.expires

    @rule(seconds=steps)
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(key=keys, value=st.integers())
    def set(self, key: int, value: int) -> None:
        self.cache.set(key, value)
        for k in [k for k, e in self.model.items() if not self.live(e)]:
            del self.model[k]  # expired entries go before anything live is evicted
        if key in self.model:
            self.model.move_to_end(key)
        elif len(self.model) >= self.max_size:
            self.model.popitem(last=False)
        now = self.clock.now
        self.model[key] = Entry(value, now, now + self.ttl)

    @rule(key=keys)
    def get(self, key: int) -> None:
        got = self.cache.get(key, MISSING)
        entry = self.model.get(key)
        if got is not MISSING:
            # The guarantee: a value is served only strictly before written + ttl.
            assert entry is not None, f"served {got!r} for {key}, which was never kept"
            age = self.clock.now - entry.written
            assert age < self.ttl, f"served {got!r} {age}s after its write (ttl {self.ttl})"
            assert got == entry.value, "served a value that was not the last one set"
        if entry is None or not self.live(entry):
            assert got is MISSING
            self.model.pop(key, None)
        else:
            assert got == entry.value, f"{key} is live in the model but was missed"
            self.model.move_to_end(key)

    @rule(key=keys)
    def delete(self, key: int) -> None:
        entry = self.model.pop(key, None)
        assert self.cache.delete(key) is (entry is not None and self.live(entry))

    @invariant()
    def holds_exactly_the_live_entries(self) -> None:
        live = {k for k, e in self.model.items() if self.live(e)}
        assert {k for k in KEYS if k in self.cache} == live
        assert len(self.cache) == len(live)
        assert len(self.cache) <= self.max_size


class BackendEntry(NamedTuple):
    value: Any
    written: float
    deadline: float | None  # the entry's own timeout (None: NO_EXPIRY)
    store_expires: float  # the ttl store's: written + default_ttl


PLUGINS = new_plugin_manager(load_entrypoints=False)


class MemoryBackendOnTTLModel(RuleBasedStateMachine):
    """``SyncCache`` on the memory backend with a ``TTLCache`` store and per-entry timeouts.

    An entry is served only while both its own timeout and the store's ``default_ttl`` hold.
    """

    @initialize(
        default_ttl=ttls,
        default_timeout=ttls,
        max_size=st.integers(1, 5),
    )
    def build(self, default_ttl: float, default_timeout: float, max_size: int) -> None:
        self.default_ttl, self.default_timeout, self.max_size = (
            default_ttl,
            default_timeout,
            max_size,
        )
        self.clock = Clock()
        config = CacheConfig(
            CACHE_STRATEGY="ttl",
            CACHE_STRATEGY_OPTIONS={"default_ttl": default_ttl, "max_size": max_size},
            CACHE_DEFAULT_TIMEOUT=default_timeout,
            CACHE_KEY_PREFIX="model",
        )
        strategy = TTLCache(default_ttl=default_ttl, max_size=max_size, clock=self.clock)
        self.backend = MemoryBackend(config=config, strategy=strategy)
        self.cache = SyncCache(config, backend=self.backend, plugin_manager=PLUGINS)
        self.model: OrderedDict[str, BackendEntry] = OrderedDict()

    # What the backend does when it reads a key: the store drops what its own ttl expired
    # (without a use), a read makes the entry the most recent, then the backend drops it
    # when the entry's own timeout has passed.
    def touch(self, key: str) -> BackendEntry | None:
        now = self.clock.now
        entry = self.model.get(key)
        if entry is None:
            return None
        if now >= entry.store_expires:
            del self.model[key]
            return None
        self.model.move_to_end(key)
        if entry.deadline is not None and now >= entry.deadline:
            del self.model[key]
            return None
        return entry

    def check_served(self, key: str, got: Any) -> None:
        """The safety property alone: nothing is served at or past either timeout."""
        if got is MISSING:
            return
        entry = self.model.get(key)
        assert entry is not None, f"served {got!r} for {key}, which was never kept"
        now = self.clock.now
        if entry.deadline is not None:
            assert now < entry.deadline, f"served {key} {now - entry.written}s after its write"
        assert now < entry.store_expires, f"served {key} past the store's default_ttl"
        assert got == entry.value, "served a value that was not the last one set"

    @rule(seconds=steps)
    def advance(self, seconds: float) -> None:
        self.clock.now += seconds

    @rule(
        key=keys,
        value=st.integers(),
        timeout=st.one_of(st.none(), st.just(NO_EXPIRY), st.sampled_from(durations)),
    )
    def set(self, key: int, value: int, timeout: float | None) -> None:
        name = f"k{key}"
        assert self.cache.set(name, value, timeout=timeout)
        now = self.clock.now
        for k in [k for k, e in self.model.items() if now >= e.store_expires]:
            del self.model[k]
        if name in self.model:
            self.model.move_to_end(name)
        elif len(self.model) >= self.max_size:
            self.model.popitem(last=False)
        seconds = self.default_timeout if timeout is None else timeout
        deadline = None if seconds == math.inf else now + seconds
        self.model[name] = BackendEntry(value, now, deadline, now + self.default_ttl)

    @rule(key=keys)
    def get(self, key: int) -> None:
        name = f"k{key}"
        got = self.cache.get(name, MISSING)
        self.check_served(name, got)
        entry = self.touch(name)
        assert got == (MISSING if entry is None else entry.value)

    @rule(key=keys)
    def get_many(self, key: int) -> None:
        names = [f"k{key}", f"k{(key + 1) % len(KEYS)}"]
        got = self.cache.get_many(names, default=MISSING)
        for name, value in zip(names, got, strict=True):
            self.check_served(name, value)
        expected = [self.touch(name) for name in names]
        assert got == [MISSING if e is None else e.value for e in expected]

    @rule(key=keys)
    def exists(self, key: int) -> None:
        name = f"k{key}"
        assert self.cache.exists(name) is (self.touch(name) is not None)

    @rule(key=keys)
    def delete(self, key: int) -> None:
        name = f"k{key}"
        assert self.cache.delete(name) is (self.touch(name) is not None)
        self.model.pop(name, None)

    @rule(key=keys)
    def remaining_ttl_is_never_overstated_for_the_entrys_own_timeout(self, key: int) -> None:
        name = f"k{key}"
        remaining = self.cache.ttl(name)
        entry = self.touch(name)
        if entry is None:
            assert remaining == 0
        elif remaining is None:
            assert entry.deadline is None
        else:
            own = math.inf if entry.deadline is None else entry.deadline - self.clock.now
            assert 0 < remaining <= own

    @invariant()
    def size_is_bounded(self) -> None:
        stored = len(self.backend)
        assert stored <= self.max_size
        now = self.clock.now
        assert stored == sum(1 for e in self.model.values() if now < e.store_expires)


TTLStrategyModel.TestCase.settings = SETTINGS
MemoryBackendOnTTLModel.TestCase.settings = SETTINGS
TestTTLStrategyModel = TTLStrategyModel.TestCase
TestMemoryBackendOnTTLModel = MemoryBackendOnTTLModel.TestCase
