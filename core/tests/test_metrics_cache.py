"""A metered cache answers exactly like a plain one.

The metered ``get``/``set`` are written out in metrics_cache.py (no extra frame on the hot
path), beside the plain ones in cache.py: this runs one script on both and compares every
answer and every exception, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cachemesh import MISSING, BackendUnavailableError, Cache, CacheConfig, SyncCache
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.metrics_cache import IN_PROCESS_SAMPLE_EVERY, default_sample_every
from cachemesh.metrics_sink import close_sinks


@pytest.fixture(autouse=True)
def _clean(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    yield
    close_sinks()


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:
        return ("raised", type(exc).__name__)


def script(cache: SyncCache) -> list[Any]:
    corrupt = cache.keys.key("corrupt")
    steps: list[Callable[[], Any]] = [
        lambda: cache.set("a", {"x": [1, 2]}),
        lambda: cache.get("a"),
        lambda: cache.get("absent"),
        lambda: cache.get("absent", MISSING) is MISSING,
        lambda: cache.get("absent", "dflt"),
        lambda: cache.set("none", None),
        lambda: cache.get("none", "dflt"),
        lambda: cache.set("a", 1, timeout=0),
        lambda: cache.set("a", 1, timeout=-1),
        lambda: cache.get_many(["a", "none", "absent"], "dflt"),
        lambda: cache.set_many({"b": 2, "c": 3}, timeout=60),
        lambda: cache.add("b", 9),
        lambda: cache.add("d", 4),
        lambda: cache.exists("d"),
        lambda: cache.delete("d"),
        lambda: cache.delete("d"),
        lambda: cache.delete_many(["b", "c", "zz"]),
        lambda: cache.incr("n", 5),
        lambda: cache.backend.set(corrupt, b"\xffnot-json", None),
        lambda: cache.get("corrupt", "dflt"),
        lambda: cache.delete_pattern("*"),
        lambda: cache.get(""),
        lambda: cache.get(12),
        lambda: cache.set("big", "x" * 10_000),
        lambda: cache.get_many([]),
    ]
    return [outcome(step) for step in steps]


async def ascript(cache: Cache) -> list[Any]:
    async def run(make: Callable[[], Any]) -> Any:
        try:
            return ("ok", await make())
        except Exception as exc:
            return ("raised", type(exc).__name__)

    async def is_missing() -> bool:
        return await cache.get("absent", MISSING) is MISSING

    steps: list[Callable[[], Any]] = [
        lambda: cache.set("a", {"x": [1, 2]}),
        lambda: cache.get("a"),
        lambda: cache.get("absent"),
        is_missing,
        lambda: cache.set("a", 1, timeout=0),
        lambda: cache.get_many(["a", "absent"], "dflt"),
        lambda: cache.set_many({"b": 2, "c": 3}),
        lambda: cache.add("b", 9),
        lambda: cache.add("d", 4),
        lambda: cache.delete("d"),
        lambda: cache.delete_many(["b", "c"]),
        lambda: cache.delete_pattern("*"),
        lambda: cache.get(""),
        lambda: cache.set("big", "x" * 10_000),
    ]
    return [await run(step) for step in steps]


def _pair(cls: type[Any], **settings: Any) -> tuple[Any, Any]:
    base = {"CACHE_KEY_PREFIX": "twins", "CACHE_MAX_VALUE_BYTES": 5000, **settings}
    plain = cls(CacheConfig(**base), namespace="plain")
    metered = cls(CacheConfig(**base, CACHE_METRICS=["memory"]), namespace="metered")
    assert plain.metrics is None and metered.metrics is not None
    return plain, metered


@pytest.mark.parametrize("serialize", [False, True], ids=["objects", "serialized"])
def test_sync_answers_match(serialize: bool) -> None:
    plain, metered = _pair(SyncCache, CACHE_BACKEND_OPTIONS={"serialize": serialize})
    assert script(metered) == script(plain)


@pytest.mark.parametrize("serialize", [False, True], ids=["objects", "serialized"])
async def test_async_answers_match(serialize: bool) -> None:
    plain, metered = _pair(Cache, CACHE_BACKEND_OPTIONS={"serialize": serialize})
    assert await ascript(metered) == await ascript(plain)


class DownBackend(MemoryBackend):
    """Every metered operation fails like an unreachable server."""

    def _down(self, *args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailableError("down")

    get = set = get_many = get_many_payloads = set_many = add = delete = _down
    delete_many = delete_pattern = _down


@pytest.mark.parametrize("policy", ["miss", "raise"])
def test_failures_match(policy: str) -> None:
    def build(metrics: list[str]) -> SyncCache:
        cfg = CacheConfig(
            CACHE_KEY_PREFIX="down", CACHE_ON_BACKEND_ERROR=policy, CACHE_METRICS=metrics
        )
        return SyncCache(cfg, backend=DownBackend(config=cfg))

    plain, metered = build([]), build(["memory"])
    calls: list[Callable[[SyncCache], Any]] = [
        lambda c: c.get("a", "dflt"),
        lambda c: c.set("a", 1),
        lambda c: c.get_many(["a"], "dflt"),
        lambda c: c.set_many({"a": 1}),
        lambda c: c.add("a", 1),
        lambda c: c.delete("a"),
        lambda c: c.delete_many(["a"]),
        lambda c: c.delete_pattern("*"),
    ]
    assert [outcome(functools.partial(f, metered)) for f in calls] == [
        outcome(functools.partial(f, plain)) for f in calls
    ]
    assert metered.metrics is not None
    assert metered.metrics.snapshot().errors == len(calls)
    assert metered.absorbed_errors == plain.absorbed_errors


def test_in_process_backends_sample_latency_network_ones_time_everything() -> None:
    cfg = CacheConfig()
    assert default_sample_every(MemoryBackend(config=cfg)) == IN_PROCESS_SAMPLE_EVERY

    class Remote:
        pass

    class Declares(MemoryBackend):
        metrics_sample_every = 8

    assert default_sample_every(Remote()) == 1  # type: ignore[arg-type]
    assert default_sample_every(Declares(config=cfg)) == 8


def test_a_subclass_override_is_left_alone() -> None:
    class Custom(SyncCache):
        def get(self, key: str, default: Any = None) -> Any:
            return "custom"

    cache = Custom(CacheConfig(CACHE_METRICS=["memory"]))
    assert cache.get("x") == "custom"
    assert "get" not in vars(type(cache)) and "set" in vars(type(cache))
