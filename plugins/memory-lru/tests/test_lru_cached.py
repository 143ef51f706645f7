"""``LRUCache.cached`` on ``def`` and ``async def``, bare and with ``key=``, and on methods."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest
from cachemesh import MISSING, LRUCache


async def test_spec_example_runs_as_written() -> None:
    # SPEC §7: LRUCache(max_size=1000); @lru_cache.cached on an async function.
    from cachemesh import LRUCache

    lru_cache = LRUCache(max_size=1000)
    calls: list[int] = []

    @lru_cache.cached
    async def get_user_data(user_id: int) -> dict[str, Any]:
        calls.append(user_id)
        await asyncio.sleep(0)
        return {"id": user_id, "name": f"User {user_id}"}

    assert await get_user_data(1) == {"id": 1, "name": "User 1"}
    assert await get_user_data(1) == {"id": 1, "name": "User 1"}
    assert await get_user_data(2) == {"id": 2, "name": "User 2"}
    assert calls == [1, 2]
    assert len(lru_cache) == 2


def test_public_name_is_the_plugin_class() -> None:
    import cachemesh
    import cachemesh_memory_lru

    assert cachemesh.LRUCache is cachemesh_memory_lru.LRUCache
    assert LRUCache.name == "lru"


def test_bare_decorator_on_def_keeps_the_function_shape() -> None:
    lru = LRUCache(max_size=10)
    calls: list[int] = []

    @lru.cached
    def square(x: int) -> int:
        """Square x."""
        calls.append(x)
        return x * x

    assert [square(3), square(3), square(4), square(3)] == [9, 9, 16, 9]
    assert calls == [3, 4]
    assert square.__name__ == "square"
    assert square.__doc__ == "Square x."
    assert not inspect.iscoroutinefunction(square)


async def test_bare_decorator_on_async_def_stays_a_coroutine_function() -> None:
    lru = LRUCache(max_size=10)
    calls: list[int] = []

    @lru.cached
    async def double(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return 2 * x

    assert inspect.iscoroutinefunction(double)
    assert await asyncio.gather(double(1), double(2)) == [2, 4]
    assert await double(1) == 2
    assert await double(2) == 4
    assert calls == [1, 2]


def test_called_decorator_with_a_key_function() -> None:
    lru = LRUCache(max_size=10)
    calls: list[str] = []

    @lru.cached(key=lambda args, kwargs: ("user", args[0].lower()))
    def load(name: str) -> str:
        calls.append(name)
        return name.upper()

    assert load("Ann") == "ANN"
    assert load("ANN") == "ANN"  # same key: served from the store
    assert calls == ["Ann"]
    assert lru.get(("user", "ann")) == "ANN"


async def test_called_decorator_with_a_key_function_on_async_def() -> None:
    lru = LRUCache(max_size=10)
    calls: list[int] = []

    def item_key(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"item:{kwargs['item_id'] if 'item_id' in kwargs else args[0]}"

    @lru.cached(key=item_key)
    async def item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"id": item_id}

    assert await item(5) == {"id": 5}
    assert await item(item_id=5) == {"id": 5}
    assert calls == [5]
    assert lru.get("item:5") == {"id": 5}


def test_called_decorator_without_arguments() -> None:
    lru = LRUCache(max_size=10)
    calls: list[int] = []

    @lru.cached()
    def inc(x: int) -> int:
        calls.append(x)
        return x + 1

    assert inc(1) == inc(1) == 2
    assert calls == [1]


def test_keyword_and_positional_calls_give_correct_results() -> None:
    lru = LRUCache(max_size=50)

    @lru.cached
    def power(base: int, exp: int = 2) -> int:
        return int(base**exp)

    for _ in range(2):
        assert power(3) == 9
        assert power(3, 3) == 27
        assert power(3, exp=3) == 27
        assert power(base=2, exp=5) == 32
        assert power(2, exp=5) == 32


def test_methods_are_cached_per_instance() -> None:
    lru = LRUCache(max_size=10)

    class Repo:
        def __init__(self, factor: int) -> None:
            self.factor = factor
            self.calls = 0

        @lru.cached
        def scaled(self, x: int) -> int:
            self.calls += 1
            return x * self.factor

    two, three = Repo(2), Repo(3)
    assert two.scaled(5) == 10
    assert three.scaled(5) == 15  # another instance: not the first one's result
    assert two.scaled(5) == 10
    assert (two.calls, three.calls) == (1, 1)


async def test_async_methods_are_cached_per_instance() -> None:
    lru = LRUCache(max_size=10)

    class Client:
        def __init__(self, base: str) -> None:
            self.base = base
            self.calls = 0

        @lru.cached
        async def url(self, path: str) -> str:
            self.calls += 1
            return f"{self.base}/{path}"

    a, b = Client("a"), Client("b")
    assert await a.url("x") == "a/x"
    assert await b.url("x") == "b/x"
    assert await a.url("x") == "a/x"
    assert (a.calls, b.calls) == (1, 1)


def test_a_raised_exception_is_not_cached() -> None:
    lru = LRUCache(max_size=10)
    attempts = 0

    @lru.cached
    def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("down")
        return x

    with pytest.raises(ConnectionError):
        flaky(1)
    assert len(lru) == 0
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert attempts == 2


async def test_an_async_exception_is_not_cached() -> None:
    lru = LRUCache(max_size=10)
    attempts = 0

    @lru.cached
    async def flaky(x: int) -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise TimeoutError("slow")
        return x

    with pytest.raises(TimeoutError):
        await flaky(1)
    assert len(lru) == 0
    assert await flaky(1) == 1
    assert await flaky(1) == 1
    assert attempts == 2


def test_none_result_is_cached_not_recomputed() -> None:
    lru = LRUCache(max_size=10)
    calls = 0

    @lru.cached
    def nothing(x: int) -> None:
        nonlocal calls
        calls += 1

    assert nothing(1) is None
    assert nothing(1) is None
    assert calls == 1


def test_cached_results_obey_the_size_bound_and_recency() -> None:
    lru = LRUCache(max_size=2)
    calls: list[int] = []

    @lru.cached
    def ident(x: int) -> int:
        calls.append(x)
        return x

    ident(1)
    ident(2)
    ident(1)  # 1 becomes the most recent, so 2 is the one evicted next
    ident(3)
    assert len(lru) == 2
    ident(1)
    ident(2)
    assert calls == [1, 2, 3, 2]


def test_decorated_function_shares_the_store_with_direct_calls() -> None:
    lru = LRUCache(max_size=10)

    @lru.cached(key=lambda args, kwargs: args[0])
    def lookup(name: str) -> str:
        return f"computed {name}"

    lru.set("a", "preset")
    assert lookup("a") == "preset"
    lru.delete("a")
    assert lookup("a") == "computed a"
    lru.clear()
    assert lru.get("a", MISSING) is MISSING


def test_two_functions_on_one_store_do_not_share_results() -> None:
    lru = LRUCache(max_size=100)

    @lru.cached
    def user_name(user_id: int) -> str:
        return f"user-{user_id}"

    @lru.cached
    def order_total(order_id: int) -> int:
        return order_id * 100

    assert user_name(7) == "user-7"
    assert order_total(7) == 700
    assert user_name(7) == "user-7"
    assert len(lru) == 2


async def test_a_sync_and_an_async_function_on_one_store_do_not_share_results() -> None:
    lru = LRUCache(max_size=100)

    @lru.cached
    def local(x: int) -> str:
        return f"local {x}"

    @lru.cached
    async def remote(x: int) -> str:
        return f"remote {x}"

    assert local(1) == "local 1"
    assert await remote(1) == "remote 1"
    assert local(1) == "local 1"


def test_keyword_call_and_lookalike_positional_call_do_not_collide() -> None:
    lru = LRUCache(max_size=10)

    @lru.cached
    def describe(a: Any, b: Any = None) -> str:
        return f"a={a!r} b={b!r}"

    assert describe(1, b=2) == "a=1 b=2"
    lookalike = ((1,), (("b", 2),))
    assert describe(*lookalike) == f"a={lookalike[0]!r} b={lookalike[1]!r}"
    assert describe(1, ("b", 2)) == "a=1 b=('b', 2)"
    assert describe(1, b=2) == "a=1 b=2"


def test_reading_sizes_and_membership_does_not_change_eviction_order() -> None:
    lru = LRUCache(max_size=3)
    for key in "abc":
        lru.set(key, key)
    lru.get("a")  # recency now b < c < a: b goes first
    assert len(lru) == 3
    assert "b" in lru  # membership is not a use
    assert repr(lru) == "LRUCache(max_size=3)"
    lru.set("d", "d")
    assert [k for k in "abcd" if k in lru] == ["a", "c", "d"]


def test_unhashable_argument_raises_and_leaves_the_store_usable() -> None:
    lru = LRUCache(max_size=10)

    @lru.cached
    def total(items: Any) -> int:
        return sum(items)

    with pytest.raises(TypeError, match="unhashable"):
        total([1, 2])
    assert total((1, 2)) == 3  # the store's lock was released after the error
    lru.set("k", 1)
    assert lru.get("k") == 1


def test_a_key_function_makes_unhashable_arguments_cacheable() -> None:
    lru = LRUCache(max_size=10)
    calls = 0

    @lru.cached(key=lambda args, kwargs: ("total", tuple(args[0])))
    def total(items: list[int]) -> int:
        nonlocal calls
        calls += 1
        return sum(items)

    assert total([1, 2]) == total([1, 2]) == 3
    assert calls == 1
