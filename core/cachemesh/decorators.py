"""Caching decorators for ``def`` and ``async def``, and the keys they use.

`wrap_cached` turns a function plus a get/set pair into a cached function, choosing the
sync or async shape from the function: `CacheStrategy.cached` plugs in an in-process
mapping (no await on a hit). `cache_result` caches on a `Cache`/`SyncCache` (any backend)
with the stampede, avalanche and penetration guards of `cached_function`.
"""

from __future__ import annotations

import functools
import inspect
import math
import string
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, cast, overload

from ._missing import MISSING
from .cached_function import AsyncCachedFunction, CachedFunction, Policy
from .errors import ConfigError, InvalidKeyError, UnstableKeyError
from .expiry import Expiry
from .keys import stable_digest

if TYPE_CHECKING:
    from .cache import Cache, SyncCache

F = TypeVar("F", bound=Callable[..., Any])
P = ParamSpec("P")
R = TypeVar("R")
KeyOf = Callable[[tuple[Any, ...], dict[str, Any]], Any]


_KWARGS = object()  # separates positional from keyword arguments inside a key
_SCALAR_TYPES = frozenset({str, int, float, bool, bytes, type(None)})
#: Most argument tuples whose key `digest_key` remembers per function (then it starts over).
REMEMBERED_KEYS = 4096


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


def _check_names(func: Callable[..., Any], names: Iterable[str], what: str) -> None:
    params = inspect.signature(func).parameters
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ConfigError(
            f"{what} on {func.__qualname__} names {unknown}, which are not parameters of "
            f"it; its parameters are {list(params)}."
        )


def digest_key(func: Callable[..., Any], prefix: str, ignore: Iterable[str] = ()) -> KeyOf:
    """A cross-process string key: ``{prefix}:{digest of the bound arguments}``.

    Arguments are bound to the signature, so ``f(1, b=2)`` and ``f(1, 2)`` share an entry;
    a first parameter named ``self``/``cls`` is left out (its repr differs per process),
    unless the object defines ``__cache_key__()``, whose result then stands for it.
    Parameters named in `ignore` (a database session, a request) are left out too; an
    argument with no stable text form raises `UnstableKeyError` naming it.
    """
    ignored = frozenset(ignore)
    _check_names(func, ignored, "ignore=")
    signature = inspect.signature(func)
    skip = _skips_first(func)
    names = list(signature.parameters)
    plain = not ignored and all(
        p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty
        for p in signature.parameters.values()
    )

    remembered: dict[tuple[Any, ...], str] = {}

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        if plain and not kwargs and len(args) == len(names):
            # Hot keys repeat: the key of scalar arguments is remembered. Their types are
            # part of the memo's key, since 1 == 1.0 == True.
            types = tuple(map(type, args))
            if _SCALAR_TYPES.issuperset(types):
                memo = (types, args)
                key = remembered.get(memo)
                if key is None:
                    key = f"{prefix}:{stable_digest(list(zip(names, args, strict=True)))}"
                    if len(remembered) >= REMEMBERED_KEYS:
                        remembered.clear()
                    remembered[memo] = key
                return key
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
        if ignored:
            items = [item for item in items if item[0] not in ignored]
        try:
            return f"{prefix}:{stable_digest(items)}"
        except UnstableKeyError as exc:
            raise _unstable(func, items, exc) from None

    return key_of


def _unstable(func: Callable[..., Any], items: list[tuple[str, Any]], exc: Exception) -> Exception:
    for name, value in items:
        try:
            stable_digest(value)
        except UnstableKeyError:
            return UnstableKeyError(
                f"cache_result on {func.__qualname__}: argument {name!r} "
                f"({type(value).__qualname__}) cannot be part of a key: {exc} To leave it out "
                f"(an injected session, a request), pass ignore=({name!r},)."
            )
    return exc


def template_key(func: Callable[..., Any], template: str) -> KeyOf:
    """Keys from a ``str.format`` template over the bound arguments: ``"user:{user_id}"``.

    Fields may reach into arguments (``"{user.id}"``); each field must name a parameter,
    which is checked once, here, rather than on the first call.
    """
    fields = {
        name.split(".")[0].split("[")[0]
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    }
    if "" in fields:
        raise ConfigError(
            f"key={template!r} on {func.__qualname__}: name each field after a parameter "
            "(e.g. 'user:{user_id}'), not '{}'."
        )
    _check_names(func, fields, f"key={template!r}")
    signature = inspect.signature(func)

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return template.format_map(bound.arguments)

    return key_of


def callable_key(func: Callable[..., Any], make: Callable[..., Any]) -> KeyOf:
    """Keys from a function of the same arguments: ``key=lambda user_id: f"user:{user_id}"``."""

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        key = make(*args, **kwargs)
        if not isinstance(key, str) or not key:
            raise InvalidKeyError(
                f"key= of cache_result on {func.__qualname__} returned {key!r}; it must "
                "return a non-empty str."
            )
        return key

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


class CacheResultDecorator(Protocol):
    """What ``cache_result(...)`` returns: apply it to a ``def`` or an ``async def``."""

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __call__(self, func: Callable[P, R]) -> CachedFunction[P, R]: ...


def cache_result(
    timeout: float | timedelta | None = None,
    key_prefix: str | None = None,
    *,
    cache: Cache | SyncCache | None = None,
    key: str | Callable[..., str] | None = None,
    ignore: Iterable[str] = (),
    unless: Callable[..., bool] | None = None,
    condition: Callable[[Any], bool] | None = None,
    cache_none: bool = True,
    negative_ttl: float | timedelta | None = None,
    jitter: float | timedelta | None = None,
    early_refresh: bool = False,
    beta: float = 1.0,
    stale_while_revalidate: float | timedelta | None = None,
    stale_if_error: float | timedelta | None = None,
    lock: bool = False,
    lock_timeout: float = 10.0,
    lock_wait: float | None = None,
    bloom: Any = None,
    bloom_key: Callable[..., Any] | None = None,
) -> CacheResultDecorator:
    """Cache a function's result by its arguments, on ``def`` and ``async def`` alike.

    The first call runs the function; later calls with the same arguments return the stored
    result until `timeout` seconds pass (``CACHE_DEFAULT_TIMEOUT`` when None). Results go to
    `cache`, or to the process's default cache built from `CacheConfig()` and the config file,
    so every process sharing a backend shares results. Concurrent misses of one key run the
    function once per process (and once overall with ``lock=True``). The other options are
    the stampede, avalanche and penetration guards described in ``docs/cache-result.md``.
    """
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    expiry = Expiry.build(
        timeout=timeout,
        jitter=jitter,
        negative_ttl=negative_ttl,
        stale_while_revalidate=stale_while_revalidate,
        stale_if_error=stale_if_error,
        early_refresh=early_refresh,
        beta=beta,
    )
    if negative_ttl is not None and not cache_none:
        raise ConfigError("negative_ttl= caches None results, but cache_none=False forbids it.")
    ignored = tuple(ignore) if not isinstance(ignore, str) else (ignore,)
    if key is not None and ignored:
        raise ConfigError("ignore= shapes the default key; with key= name only what you use.")
    if key_prefix is not None and (not isinstance(key_prefix, str) or not key_prefix):
        raise ConfigError(f"key_prefix={key_prefix!r}: give a non-empty str, or None.")
    for name, hook in (("unless", unless), ("condition", condition), ("bloom_key", bloom_key)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name}= must be callable, got {hook!r}.")
    if bloom is not None and not callable(getattr(bloom, "might_contain", None)):
        raise TypeError(
            f"bloom= needs an object with might_contain(item) (e.g. cachemesh.BloomFilter), "
            f"got {type(bloom).__name__}."
        )
    if (
        isinstance(lock_timeout, bool)
        or not isinstance(lock_timeout, (int, float))
        or not (0 < lock_timeout < math.inf)
    ):
        raise ConfigError(f"lock_timeout={lock_timeout!r}: give seconds > 0.")
    if lock_wait is not None and (
        isinstance(lock_wait, bool) or not isinstance(lock_wait, (int, float)) or lock_wait < 0
    ):
        raise ConfigError(f"lock_wait={lock_wait!r}: give seconds >= 0, or None for lock_timeout.")

    def decorate(func: Callable[..., Any]) -> Any:
        is_async = _is_async(func)
        if cache is not None and is_async != _is_async_cache(cache):
            want = "Cache (async)" if is_async else "SyncCache"
            raise TypeError(
                f"cache_result on {func.__qualname__}: an {'async' if is_async else 'sync'} "
                f"function needs a {want}, got {type(cache).__name__}."
            )
        policy = Policy(
            expiry=expiry,
            key_of=_key_function(func, key_prefix, key, ignored),
            unless=unless,
            condition=condition,
            cache_none=cache_none,
            bloom=bloom,
            bloom_key=None if bloom is None else (bloom_key or _first_argument(func, ignored)),
            lock=bool(lock),
            lock_timeout=float(lock_timeout),
            lock_wait=float(lock_timeout if lock_wait is None else lock_wait),
        )
        if is_async:
            return AsyncCachedFunction(func, policy, cast("Cache | None", cache))
        return CachedFunction(func, policy, cast("SyncCache | None", cache))

    return cast(CacheResultDecorator, decorate)


def _is_async(func: Callable[..., Any]) -> bool:
    return (
        inspect.iscoroutinefunction(func)
        or isinstance(func, AsyncCachedFunction)
        or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004
    )


def _is_async_cache(cache: Any) -> bool:
    from .cache import Cache

    return isinstance(cache, Cache)


def _key_function(
    func: Callable[..., Any],
    key_prefix: str | None,
    key: str | Callable[..., str] | None,
    ignored: tuple[str, ...],
) -> KeyOf:
    if key is None:
        name = f"{func.__module__}.{func.__qualname__}"
        prefix = f"{key_prefix}:{func.__name__}" if key_prefix else name
        return digest_key(func, prefix, ignored)
    if isinstance(key, str):
        make = template_key(func, key)
    elif callable(key):
        make = callable_key(func, key)
    else:
        raise TypeError(f"key= must be a format string or a callable, got {key!r}.")
    if not key_prefix:
        return make

    def prefixed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return f"{key_prefix}:{make(args, kwargs)}"

    return prefixed


def _first_argument(func: Callable[..., Any], ignored: tuple[str, ...]) -> Callable[..., str]:
    """The default bloom item: the first argument (after self/cls, not ignored), as str."""
    signature = inspect.signature(func)
    names = list(signature.parameters)
    if _skips_first(func):
        names = names[1:]
    names = [n for n in names if n not in ignored]
    if not names:
        raise ConfigError(
            f"bloom= on {func.__qualname__}: it takes no argument to check; pass bloom_key="
            "a function of the call's arguments that returns the item to look up."
        )
    name = names[0]

    def item(*args: Any, **kwargs: Any) -> str:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return str(bound.arguments[name])

    return item
