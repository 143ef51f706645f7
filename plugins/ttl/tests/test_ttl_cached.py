"""``TTLCache.cached`` on ``def`` and ``async def``: results live ``default_ttl`` seconds."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from cachemesh import TTLCache


async def test_spec_example_runs_as_written() -> None:
    # SPEC §7: TTLCache(default_ttl=300); @ttl_cache.cached on an async function.
    from cachemesh import TTLCache

    ttl_cache = TTLCache(default_ttl=300)
    calls: list[str] = []

    @ttl_cache.cached
    async def get_config(name: str) -> dict[str, Any]:
        calls.append(name)
        await asyncio.sleep(0)
        return {"name": name, "enabled": True}

    assert await get_config("feature") == {"name": "feature", "enabled": True}
    assert await get_config("feature") == {"name": "feature", "enabled": True}
    assert calls == ["feature"]
    assert len(ttl_cache) == 1


def test_public_name_is_the_plugin_class() -> None:
    import cachemesh
    import cachemesh_ttl

    assert cachemesh.TTLCache is cachemesh_ttl.TTLCache
    assert TTLCache.name == "ttl"


def test_sync_result_is_recomputed_once_its_ttl_has_passed(clock: Any) -> None:
    ttl = TTLCache(default_ttl=10, clock=clock)
    calls: list[int] = []

    @ttl.cached
    def square(x: int) -> int:
        """Square x."""
        calls.append(x)
        return x * x

    assert square(3) == 9
    clock.advance(9.5)
    assert square(3) == 9  # still fresh
    assert calls == [3]
    clock.advance(0.5)  # exactly 10s after the write: expired
    assert square(3) == 9
    assert calls == [3, 3]
    assert square.__name__ == "square"
    assert square.__doc__ == "Square x."
    assert not inspect.iscoroutinefunction(square)


async def test_async_result_is_recomputed_once_its_ttl_has_passed(clock: Any) -> None:
    ttl = TTLCache(default_ttl=5, clock=clock)
    calls: list[int] = []

    @ttl.cached
    async def fetch(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        await asyncio.sleep(0)
        return {"id": user_id, "version": len(calls)}

    assert inspect.iscoroutinefunction(fetch)
    assert await fetch(1) == {"id": 1, "version": 1}
    clock.advance(4)
    assert await fetch(1) == {"id": 1, "version": 1}
    clock.advance(1)
    assert await fetch(1) == {"id": 1, "version": 2}
    assert await fetch(1) == {"id": 1, "version": 2}
    assert calls == [1, 1]


def test_a_hit_does_not_extend_the_ttl(clock: Any) -> None:
    ttl = TTLCache(default_ttl=10, clock=clock)
    calls = 0

    @ttl.cached
    def value(x: int) -> int:
        nonlocal calls
        calls += 1
        return x

    value(1)
    for _ in range(9):
        clock.advance(1)
        value(1)  # read every second: the entry still dies 10s after its write
    assert calls == 1
    clock.advance(1)
    value(1)
    assert calls == 2


def test_called_decorator_with_a_key_function(clock: Any) -> None:
    ttl = TTLCache(default_ttl=60, clock=clock)
    calls: list[str] = []

    @ttl.cached(key=lambda args, kwargs: f"rate:{args[0]}")
    def rate(currency: str) -> float:
        calls.append(currency)
        return 1.5

    assert rate("EUR") == 1.5
    assert rate("EUR") == 1.5
    assert calls == ["EUR"]
    assert ttl.get("rate:EUR") == 1.5
    clock.advance(60)
    assert ttl.get("rate:EUR") is None


async def test_called_decorator_on_async_def_and_without_arguments(clock: Any) -> None:
    ttl = TTLCache(default_ttl=60, clock=clock)
    calls: list[int] = []

    @ttl.cached()
    async def plus_one(x: int) -> int:
        calls.append(x)
        return x + 1

    @ttl.cached(key=lambda args, kwargs: ("neg", args[0]))
    async def negate(x: int) -> int:
        calls.append(-x)
        return -x

    assert await plus_one(1) == await plus_one(1) == 2
    assert await negate(1) == await negate(1) == -1
    assert calls == [1, -1]


def test_methods_are_cached_per_instance(clock: Any) -> None:
    ttl = TTLCache(default_ttl=30, clock=clock)

    class Prices:
        def __init__(self, markup: int) -> None:
            self.markup = markup
            self.calls = 0

        @ttl.cached
        def price(self, base: int) -> int:
            self.calls += 1
            return base + self.markup

    a, b = Prices(1), Prices(2)
    assert (a.price(10), b.price(10), a.price(10)) == (11, 12, 11)
    assert (a.calls, b.calls) == (1, 1)
    clock.advance(30)
    assert a.price(10) == 11
    assert a.calls == 2


async def test_an_exception_is_not_cached(clock: Any) -> None:
    ttl = TTLCache(default_ttl=30, clock=clock)
    attempts = 0

    @ttl.cached
    async def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("down")
        return x

    with pytest.raises(ConnectionError):
        await flaky(1)
    assert len(ttl) == 0
    assert await flaky(1) == 1
    assert await flaky(1) == 1
    assert attempts == 2


def test_sync_exception_is_not_cached(clock: Any) -> None:
    ttl = TTLCache(default_ttl=30, clock=clock)
    attempts = 0

    @ttl.cached
    def parse(text: str) -> int:
        nonlocal attempts
        attempts += 1
        return int(text)

    with pytest.raises(ValueError, match="invalid literal"):
        parse("x")
    with pytest.raises(ValueError, match="invalid literal"):
        parse("x")
    assert attempts == 2
    assert len(ttl) == 0
