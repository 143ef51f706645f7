"""Caching decorators for ``def`` and ``async def``: one machinery for every store.

`wrap_cached` turns a function plus a get/set pair into a cached function, choosing the
sync or async shape from the function. `CacheStrategy.cached` plugs in an in-process
mapping (no await on a hit); `cache_result` plugs in a `Cache`/`SyncCache` (any backend).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ._missing import MISSING
from .keys import stable_digest

if TYPE_CHECKING:
    from .cache import Cache, SyncCache

F = TypeVar("F", bound=Callable[..., Any])
KeyOf = Callable[[tuple[Any, ...], dict[str, Any]], Any]


_KWARGS = object()  # separates positional from keyword arguments inside a key


def argument_key(func: Callable[..., Any]) -> KeyOf:
    """In-process keys for calls of `func`: cheap, hashable, equal for equal arguments.

    The function is part of the key, so several functions can share one store, and a
    marker separates keyword arguments, so ``f(1, b=2)`` never meets ``f(1, ("b", 2))``.
    """

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Hashable:
        if kwargs:
            return (func, *args, _KWARGS, *sorted(kwargs.items()))
        return (func, *args)

    return key_of


def _skips_first(func: Callable[..., Any]) -> bool:
    params = list(inspect.signature(func).parameters)
    return bool(params) and params[0] in ("self", "cls")


def digest_key(func: Callable[..., Any], prefix: str) -> KeyOf:
    """A cross-process string key: ``{prefix}:{digest of the bound arguments}``.

    Arguments are bound to the signature, so ``f(1, b=2)`` and ``f(1, 2)`` share an entry;
    a first parameter named ``self``/``cls`` is left out (its repr differs per process),
    unless the object defines ``__cache_key__()``, whose result then stands for it.
    """
    signature = inspect.signature(func)
    skip = _skips_first(func)
    names = list(signature.parameters)
    plain = all(
        p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty
        for p in signature.parameters.values()
    )

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if plain and not kwargs and len(args) == len(names):
            items = list(zip(names, args, strict=True))  # what bind() would give, ~4 µs cheaper
        else:
            try:
                bound = signature.bind(*args, **kwargs)
                bound.apply_defaults()
                items = list(bound.arguments.items())
            except TypeError:  # let the call itself raise the usual TypeError
                items = [("args", args), ("kwargs", kwargs)]
        if skip and items:
            owner = items[0][1]
            marker = getattr(owner, "__cache_key__", None)
            items = [("self", marker()), *items[1:]] if callable(marker) else items[1:]
        return f"{prefix}:{stable_digest(items)}"

    return key_of


def wrap_cached(
    func: F,
    *,
    key_of: KeyOf,
    get: Callable[[Any], Any] | None = None,
    set: Callable[[Any, Any], Any] | None = None,
    aget: Callable[[Any], Awaitable[Any]] | None = None,
    aset: Callable[[Any, Any], Awaitable[Any]] | None = None,
) -> F:
    """Wrap `func` so a call returns the stored result for its key, or computes and stores it.

    Give `get`/`set` (sync, returning ``MISSING`` on a miss) for an in-process store, and
    `aget`/`aset` too when an ``async def`` must await the store.
    """
    if inspect.iscoroutinefunction(func):
        if aget is not None and aset is not None:
            _aget, _aset = aget, aset

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                key = key_of(args, kwargs)
                value = await _aget(key)
                if value is not MISSING:
                    return value
                value = await func(*args, **kwargs)
                await _aset(key, value)
                return value

        else:
            if get is None or set is None:
                raise TypeError(f"{func.__qualname__}: give get/set or aget/aset")
            _get, _set = get, set

            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                key = key_of(args, kwargs)
                value = _get(key)
                if value is not MISSING:
                    return value
                value = await func(*args, **kwargs)
                _set(key, value)
                return value

        return cast(F, functools.update_wrapper(async_wrapper, func))

    if get is None or set is None:
        raise TypeError(f"{func.__qualname__} is a plain function but no sync store was given")
    sget, sset = get, set

    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        key = key_of(args, kwargs)
        value = sget(key)
        if value is not MISSING:
            return value
        value = func(*args, **kwargs)
        sset(key, value)
        return value

    return cast(F, functools.update_wrapper(sync_wrapper, func))


def cache_result(
    timeout: float | None = None,
    key_prefix: str | None = None,
    *,
    cache: Cache | SyncCache | None = None,
) -> Callable[[F], F]:
    """Cache a function's result by its arguments, on ``def`` and ``async def`` alike.

    The first call runs the function; later calls with the same arguments return the stored
    result until `timeout` seconds pass (``CACHE_DEFAULT_TIMEOUT`` when None). Results go to
    `cache`, or to the process's default cache built from `CacheConfig()` and the config file,
    so every process sharing a backend shares results.
    """
    from .cache import Cache, default_cache, default_sync_cache

    def decorate(func: F) -> F:
        prefix = key_prefix or f"{func.__module__}.{func.__qualname__}"
        key_of = digest_key(func, prefix)
        is_async = inspect.iscoroutinefunction(func)
        if cache is not None and is_async != isinstance(cache, Cache):
            want = "Cache (async)" if is_async else "SyncCache"
            raise TypeError(
                f"cache_result on {func.__qualname__}: an {'async' if is_async else 'sync'} "
                f"function needs a {want}, got {type(cache).__name__}."
            )
        if is_async:
            acache = cast("Cache | None", cache)

            async def aget(key: str) -> Any:
                return await (acache or default_cache()).get(key, MISSING)

            async def aset(key: str, value: Any) -> None:
                await (acache or default_cache()).set(key, value, timeout=timeout)

            return wrap_cached(func, key_of=key_of, aget=aget, aset=aset)

        scache = cast("SyncCache | None", cache)

        def get(key: str) -> Any:
            return (scache or default_sync_cache()).get(key, MISSING)

        def set_(key: str, value: Any) -> None:
            (scache or default_sync_cache()).set(key, value, timeout=timeout)

        return wrap_cached(func, key_of=key_of, get=get, set=set_)

    return decorate
