"""Versioned caches: drop a whole namespace in O(1) by moving it to its next version.

Deleting a namespace's keys means finding them first: a SCAN over the whole keyspace, whose
cost grows with everything stored, not with the namespace. Here the namespace's current
version lives in the backend as a generation counter, every data key carries it
(``{namespace}:v{version}:{key}``, under the wrapped cache's prefix), and invalidating is one
INCR: readers move to keys nobody has written yet, in every process at once, and the old
entries are never read again. They are reclaimed by their own TTL, or by
`purge_old_versions()` for those who want the memory back now.

Two flavours, as for `Cache`/`SyncCache`: `VersionedCache` (asyncio, over a `Cache` such as
``RedisManager``) and `SyncVersionedCache` (blocking, over a `SyncCache`). The class picks the
API; handing one the other flavour's cache is a `TypeError` that names the right class.

Why the first version is a timestamp (microseconds since 1970) and not 1: the counter is a
key like any other, so it can be lost (an ``allkeys-*`` eviction, a strategy that caps
every entry's lifetime, a ``clear()`` racing a writer). A counter restarted at 1 would climb
back through versions whose entries may still be alive and serve them again after they
were invalidated. A counter re-created from the clock starts above every version used
before (the counter would have to outrun a microsecond clock, more than a million
invalidations a second), so an invalidated entry can never come back. This is the
namespacing recipe of the memcached wiki.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._missing import MISSING
from .cache import Cache, SyncCache, _CacheBase
from .errors import BackendError, CacheError, ConfigError, InvalidKeyError
from .keys import KeyBuilder, escape_glob

__all__ = [
    "COUNTER_SUFFIX",
    "FIRST_VERSION_FLOOR",
    "MAX_NAMESPACE_LENGTH",
    "SyncVersionedCache",
    "VersionedCache",
    "older_version_globs",
]

#: Every version is at least this (the smallest 16-digit number): a counter found below it
#: was not created by a versioned cache (e.g. a bare INCR re-created it) and is lifted.
FIRST_VERSION_FLOOR = 10**15
#: The counter key's last part: data keys have ``v<digits>`` there, so none can equal it.
COUNTER_SUFFIX = "__gen__"
#: Longest namespace name (keys must leave room for the version and a hashed user key).
MAX_NAMESPACE_LENGTH = 100
#: Digits of the largest version a 64-bit counter (Redis INCR) can hold.
_MAX_VERSION_DIGITS = 19
_FORBIDDEN = frozenset(":*?[]\\")
#: How often a counter read re-creates a counter that keeps vanishing before giving up.
_SEED_ATTEMPTS = 3


def _now_us() -> int:
    """The wall clock in microseconds: where a new (or lost) counter starts."""
    return time.time_ns() // 1000


def _check_namespace(namespace: Any) -> str:
    if not isinstance(namespace, str):
        raise InvalidKeyError(
            f"namespace={namespace!r} must be a str such as 'users', got "
            f"{type(namespace).__name__}."
        )
    problem = None
    if not namespace:
        problem = "it is empty"
    elif len(namespace) > MAX_NAMESPACE_LENGTH:
        problem = f"it is {len(namespace)} characters long (at most {MAX_NAMESPACE_LENGTH})"
    elif any(ch in _FORBIDDEN for ch in namespace):
        problem = "it holds ':' or a glob character (* ? [ ] \\)"
    elif not namespace.isprintable() or any(ch.isspace() for ch in namespace):
        problem = "it holds white space or a control character"
    if problem:
        raise InvalidKeyError(
            f"namespace={namespace!r} is not valid: {problem}. A namespace is 1 to "
            f"{MAX_NAMESPACE_LENGTH} printable characters without spaces, ':' or glob "
            "characters, e.g. 'users' or 'catalog.v2'."
        )
    return namespace


def _check_version_ttl(value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (0 <= value < float("inf")):  # also refuses NaN
        raise ConfigError(
            f"version_ttl={value!r} is not valid: give the seconds a process may reuse the "
            "version it last read (a finite number >= 0; 0 reads it on every call)."
        )
    return float(value)


def _user_key(key: Any) -> str:
    return key if type(key) is str else KeyBuilder._coerce(key)


def _digit_runs(prefix: str, free: int) -> str:
    return prefix + "[0-9]" * free


def older_version_globs(current: int) -> list[str]:
    """Globs that match, as whole strings, exactly the versions below `current`.

    Versions are decimal numbers without leading zeros, never below `FIRST_VERSION_FLOOR`.
    Redis globs have no alternation, so the set is cut by length and by the first digit
    that is smaller than `current`'s: one glob per length below `current`'s and one per
    non-zero digit of `current` (about 15 for a timestamp version). Every glob spells
    each digit with a class, so none can run past the version into the ``:`` that follows.
    """
    digits = str(current)
    floor_digits = len(str(FIRST_VERSION_FLOOR))
    globs = [_digit_runs("[1-9]", length - 1) for length in range(floor_digits, len(digits))]
    for index, digit in enumerate(digits):
        low = 1 if index == 0 else 0
        high = int(digit) - 1
        if high < low:
            continue
        choice = str(low) if high == low else f"[{low}-{high}]"
        globs.append(_digit_runs(digits[:index] + choice, len(digits) - index - 1))
    return globs


class _VersionedBase:
    """What both flavours share: keys, the remembered version, counter parsing, seeding."""

    cache: _CacheBase

    def __init__(
        self,
        cache: _CacheBase,
        namespace: str,
        version_ttl: float,
        clock: Callable[[], float],
    ) -> None:
        #: The wrapped cache (its prefix, serializer, error policy and backend are used).
        self.cache = cache
        #: The namespace whose keys this object reads and writes.
        self.namespace = _check_namespace(namespace)
        #: Seconds this object reuses the version it last read (0: read it on every call).
        self.version_ttl = _check_version_ttl(version_ttl)
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}.")
        self._clock = clock
        self._keys = cache.keys
        self._backend = cache.backend
        self._plain = cache.backend.stores_objects
        self._lead = f"{self.namespace}:v"
        self._room = self._keys.max_length - len(self._keys.base)
        self._counter = self._keys.key(f"{self.namespace}:{COUNTER_SUFFIX}")
        # (version, clock() when the read that found it started); replaced by a newer read.
        self._seen: tuple[int, float] | None = None
        self._seen_lock = threading.Lock()

    @property
    def counter_key(self) -> str:
        """The stored key of this namespace's generation counter (to inspect or monitor)."""
        return self._counter

    # --- keys -----------------------------------------------------------------------------
    def _part(self, version: int, key: Any) -> str:
        """The key handed to the wrapped cache: ``{namespace}:v{version}:{key}``.

        A key too long for the cache's limit is hashed here, after the version, so that the
        stored key still starts with the namespace and version (`purge_old_versions` finds
        it); the cache's own hashing would replace the whole key.
        """
        if type(key) is not str:
            key = _user_key(key)
        part = f"{self._lead}{version}:{key}"
        if len(part) > self._room:
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
            part = f"{self._lead}{version}:#{digest}"
        return part

    @staticmethod
    def _check_pattern(pattern: Any) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidKeyError(f"pattern {pattern!r} must be a non-empty string, e.g. 'user:*'.")

    def _pattern(self, version: int, pattern: str) -> str:
        """The cache-level glob for a user glob over this version's keys."""
        return escape_glob(f"{self._lead}{version}:") + pattern

    def _purge_patterns(self, current: int) -> list[str]:
        lead = escape_glob(self._lead)
        return [self._keys.pattern(f"{lead}{glob}:*") for glob in older_version_globs(current)]

    # --- the remembered version -------------------------------------------------------------
    def _fresh(self) -> int | None:
        """The remembered version while ``version_ttl`` allows reusing it, else None."""
        seen = self._seen
        if seen is not None and self._clock() - seen[1] < self.version_ttl:
            return seen[0]
        return None

    def _remember(self, version: int, started: float) -> int:
        # A read that started earlier never replaces a later one's answer: the staleness
        # bound counts from when the read that found the version began.
        with self._seen_lock:
            if self._seen is None or started >= self._seen[1]:
                self._seen = (version, started)
        return version

    # --- the counter --------------------------------------------------------------------------
    def _parse(self, raw: Any) -> int | None:
        """The counter's value, or None when it does not exist."""
        if raw is MISSING or raw is None:
            return None
        try:
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        except (TypeError, ValueError):
            raise CacheError(
                f"The generation counter {self._counter!r} holds {raw!r}, not an integer; "
                "something other than a versioned cache wrote it. Delete that key: the "
                "namespace then starts a new version, above every earlier one."
            ) from None

    def _seed(self) -> int:
        """Where a new or lost counter starts: above anything used before (module docstring)."""
        seen = self._seen
        return max(_now_us(), FIRST_VERSION_FLOOR, seen[0] + 1 if seen else 0)

    def _encoded(self, number: int) -> Any:
        # The counter is written and read around the serializer: INCR needs a decimal string,
        # whatever the cache's serializer is.
        return number if self._plain else str(number).encode()

    def _lost_counter(self) -> CacheError:
        return CacheError(
            f"The backend {self._backend.name!r} does not keep the generation counter "
            f"{self._counter!r}: it was absent {_SEED_ATTEMPTS} times in a row and creating "
            "it did not stick. The store is too small or drops keys at once; give it room."
        )

    # --- values read around the cache ---------------------------------------------------------
    def _decode_values(self, raws: list[Any], default: Any) -> list[Any]:
        """Decode values fetched with the counter (MISSING or None marks a miss)."""
        if self._plain:
            return [default if raw is MISSING else raw for raw in raws]
        return self.cache._decode_payloads(raws, default)

    def _fetch_keys(self, parts: list[str]) -> list[str]:
        return [self._counter, *self._keys.keys(parts)]

    def _absorb(self, operation: str, error: BackendError) -> None:
        """The wrapped cache's error policy decides: re-raise, or answer without the store."""
        self.cache._failed(operation, self._counter, error)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.cache!r}, namespace={self.namespace!r}, "
            f"version_ttl={self.version_ttl:g})"
        )


class SyncVersionedCache(_VersionedBase):
    """A namespace of a `SyncCache` that `invalidate()` empties in one round trip.

    ``version_ttl`` trades freshness for a round trip: 0 (the default) reads the counter
    on every call, so every process sees an invalidation at once; ``version_ttl=s`` lets
    this object reuse the version it read for up to ``s`` seconds, so another process's
    invalidation reaches it at most ``s`` seconds late. `clock` (monotonic seconds) is for
    tests.
    """

    cache: SyncCache

    def __init__(
        self,
        cache: SyncCache,
        namespace: str = "default",
        *,
        version_ttl: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(cache, SyncCache):
            if isinstance(cache, Cache):
                raise TypeError(
                    "SyncVersionedCache blocks and needs a SyncCache; this is an asyncio "
                    "Cache. Use VersionedCache(cache, ...) with `await`, or "
                    "SyncVersionedCache(cache.sync(), ...) for blocking code."
                )
            raise TypeError(
                "SyncVersionedCache needs a cachemesh SyncCache (e.g. SyncCache(config)), "
                f"got {type(cache).__name__}."
            )
        super().__init__(cache, namespace, version_ttl, clock)

    # --- the version ----------------------------------------------------------------------
    def version(self) -> int:
        """The namespace's current version, read from the backend now (created if absent)."""
        started = self._clock()
        for _ in range(_SEED_ATTEMPTS):
            current = self._parse(self._backend.get(self._counter))
            if current is None:
                seed = self._seed()
                if self._backend.add(self._counter, self._encoded(seed), None):
                    return self._remember(seed, started)
                continue  # another process created it first: read theirs
            if current < FIRST_VERSION_FLOOR:
                current = self._backend.incr(self._counter, self._seed() - current)
            return self._remember(current, started)
        raise self._lost_counter()

    def _current(self, operation: str) -> int | None:
        """The version to use now (the remembered one while fresh); None when the backend
        failed and the error policy absorbed it."""
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            return self.version()
        except BackendError as exc:
            self._absorb(operation, exc)
            return None

    def invalidate(self, *, purge: bool = False) -> int:
        """Move the namespace to its next version and return it: one INCR, no scan.

        Every process reading with ``version_ttl=0`` misses the old entries from now on
        (with ``version_ttl=s``, within ``s`` seconds). The old entries stay until their TTL
        runs out; ``purge=True`` also deletes them now (`purge_old_versions`, a SCAN).
        Backend failures raise: an invalidation is never silently skipped.
        """
        started = self._clock()
        new = self._backend.incr(self._counter, 1)
        if new < FIRST_VERSION_FLOOR:  # the counter was gone and INCR re-created it at 1
            new = self._backend.incr(self._counter, self._seed() - new)
        self._remember(new, started)
        if purge:
            self.purge_old_versions()
        return new

    def purge_old_versions(self) -> int:
        """Delete the entries of every version below the current one; return how many.

        Never touches the current version (nor later ones) or another namespace. It scans
        the keyspace (SCAN + UNLINK on Redis) once per glob of `older_version_globs`, so it
        is maintenance for a periodic job, not for each request. Entries a process with a
        stale version writes afterwards are left to their TTL.
        """
        current = self.version()
        return sum(self._backend.delete_pattern(p) for p in self._purge_patterns(current))

    # --- entries ------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The value at `key` in the current version, or `default`.

        One round trip: the counter and the entry under the last known version come back
        in one MGET; the entry is read again only after an invalidation.
        """
        fresh = self._fresh()
        if fresh is not None:
            return self.cache.get(self._part(fresh, key), default)
        return self._read([key], default, "get")[0]

    def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values for `keys` in the current version, in order; `default` where absent."""
        wanted = list(keys)
        fresh = self._fresh()
        if fresh is not None:
            return self.cache.get_many([self._part(fresh, k) for k in wanted], default)
        return self._read(wanted, default, "get_many")

    def _read(self, keys: list[Any], default: Any, operation: str) -> list[Any]:
        seen = self._seen
        if seen is None:  # the first read of this object: learn the version first
            version = self._current(operation)
        else:
            parts = [self._part(seen[0], k) for k in keys]
            started = self._clock()
            try:
                if self._plain:
                    raws = self._backend.get_many(self._fetch_keys(parts))
                else:
                    raws = self._backend.get_many_payloads(self._fetch_keys(parts))
            except BackendError as exc:
                self._absorb(operation, exc)
                return [default] * len(keys)
            current = self._parse(raws[0])
            if current == seen[0]:  # the common case: fresh, in one round trip
                self._remember(current, started)
                return self._decode_values(raws[1:], default)
            if current is not None and current >= FIRST_VERSION_FLOOR:  # invalidated
                version = self._remember(current, started)
            else:  # the counter is gone: re-create it above every earlier version
                version = self._current(operation)
        if version is None:
            return [default] * len(keys)
        return self.cache.get_many([self._part(version, k) for k in keys], default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` in the current version (give it a timeout: see the docs)."""
        version = self._current("set")
        if version is None:
            return False
        return self.cache.set(self._part(version, key), value, timeout)

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` only if the current version holds nothing at `key`."""
        version = self._current("add")
        if version is None:
            return False
        return self.cache.add(self._part(version, key), value, timeout)

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        """Store every pair in the current version, with one TTL."""
        version = self._current("set_many")
        if version is None:
            return False
        return self.cache.set_many({self._part(version, k): v for k, v in mapping.items()}, timeout)

    def exists(self, key: str) -> bool:
        version = self._current("exists")
        return version is not None and self.cache.exists(self._part(version, key))

    def delete(self, key: str) -> bool:
        """Remove `key` from the current version; True when something was removed."""
        version = self._current("delete")
        return version is not None and self.cache.delete(self._part(version, key))

    def delete_many(self, keys: Iterable[str]) -> int:
        version = self._current("delete_many")
        if version is None:
            return 0
        return self.cache.delete_many([self._part(version, k) for k in keys])

    def delete_pattern(self, pattern: str) -> int:
        """Delete the current version's keys matching the glob `pattern` (``"user:*"``)."""
        self._check_pattern(pattern)
        version = self._current("delete_pattern")
        if version is None:
            return 0
        return self.cache.delete_pattern(self._pattern(version, pattern))


class VersionedCache(_VersionedBase):
    """A namespace of a `Cache` that ``await invalidate()`` empties in one round trip.

    The asyncio twin of `SyncVersionedCache` (same arguments, same meaning, every operation
    awaited). ``VersionedCache(RedisManager(config), "users")`` gives SPEC §10's versioned
    cache on Redis, shared by every process on that Redis.
    """

    cache: Cache

    def __init__(
        self,
        cache: Cache,
        namespace: str = "default",
        *,
        version_ttl: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(cache, Cache):
            if isinstance(cache, SyncCache):
                raise TypeError(
                    "VersionedCache is the asyncio flavour and needs a Cache; this is a "
                    "SyncCache. Use cachemesh.versioned.SyncVersionedCache(cache, ...) in "
                    "blocking code."
                )
            raise TypeError(
                "VersionedCache needs a cachemesh Cache (e.g. RedisManager(config) or "
                f"Cache(config)), got {type(cache).__name__}."
            )
        super().__init__(cache, namespace, version_ttl, clock)

    # --- the version ----------------------------------------------------------------------
    async def version(self) -> int:
        """The namespace's current version, read from the backend now (created if absent)."""
        started = self._clock()
        for _ in range(_SEED_ATTEMPTS):
            current = self._parse(await self._backend.aget(self._counter))
            if current is None:
                seed = self._seed()
                if await self._backend.aadd(self._counter, self._encoded(seed), None):
                    return self._remember(seed, started)
                continue  # another process created it first: read theirs
            if current < FIRST_VERSION_FLOOR:
                current = await self._backend.aincr(self._counter, self._seed() - current)
            return self._remember(current, started)
        raise self._lost_counter()

    async def _current(self, operation: str) -> int | None:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        try:
            return await self.version()
        except BackendError as exc:
            self._absorb(operation, exc)
            return None

    async def invalidate(self, *, purge: bool = False) -> int:
        """Move the namespace to its next version and return it: one INCR, no scan.

        See `SyncVersionedCache.invalidate`.
        """
        started = self._clock()
        new = await self._backend.aincr(self._counter, 1)
        if new < FIRST_VERSION_FLOOR:  # the counter was gone and INCR re-created it at 1
            new = await self._backend.aincr(self._counter, self._seed() - new)
        self._remember(new, started)
        if purge:
            await self.purge_old_versions()
        return new

    async def purge_old_versions(self) -> int:
        """Delete the entries of every version below the current one; return how many.

        See `SyncVersionedCache.purge_old_versions`.
        """
        current = await self.version()
        deleted = 0
        for pattern in self._purge_patterns(current):
            deleted += await self._backend.adelete_pattern(pattern)
        return deleted

    # --- entries ------------------------------------------------------------------------------
    async def get(self, key: str, default: Any = None) -> Any:
        """The value at `key` in the current version, or `default` (one round trip)."""
        fresh = self._fresh()
        if fresh is not None:
            return await self.cache.get(self._part(fresh, key), default)
        return (await self._read([key], default, "get"))[0]

    async def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values for `keys` in the current version, in order; `default` where absent."""
        wanted = list(keys)
        fresh = self._fresh()
        if fresh is not None:
            return await self.cache.get_many([self._part(fresh, k) for k in wanted], default)
        return await self._read(wanted, default, "get_many")

    async def _read(self, keys: list[Any], default: Any, operation: str) -> list[Any]:
        seen = self._seen
        if seen is None:
            version = await self._current(operation)
        else:
            parts = [self._part(seen[0], k) for k in keys]
            started = self._clock()
            try:
                if self._plain:
                    raws = await self._backend.aget_many(self._fetch_keys(parts))
                else:
                    raws = await self._backend.aget_many_payloads(self._fetch_keys(parts))
            except BackendError as exc:
                self._absorb(operation, exc)
                return [default] * len(keys)
            current = self._parse(raws[0])
            if current == seen[0]:
                self._remember(current, started)
                return self._decode_values(raws[1:], default)
            if current is not None and current >= FIRST_VERSION_FLOOR:
                version = self._remember(current, started)
            else:
                version = await self._current(operation)
        if version is None:
            return [default] * len(keys)
        return await self.cache.get_many([self._part(version, k) for k in keys], default)

    async def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` in the current version (give it a timeout: see the docs)."""
        version = await self._current("set")
        if version is None:
            return False
        return await self.cache.set(self._part(version, key), value, timeout)

    async def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` only if the current version holds nothing at `key`."""
        version = await self._current("add")
        if version is None:
            return False
        return await self.cache.add(self._part(version, key), value, timeout)

    async def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        """Store every pair in the current version, with one TTL."""
        version = await self._current("set_many")
        if version is None:
            return False
        items = {self._part(version, k): v for k, v in mapping.items()}
        return await self.cache.set_many(items, timeout)

    async def exists(self, key: str) -> bool:
        version = await self._current("exists")
        return version is not None and await self.cache.exists(self._part(version, key))

    async def delete(self, key: str) -> bool:
        """Remove `key` from the current version; True when something was removed."""
        version = await self._current("delete")
        return version is not None and await self.cache.delete(self._part(version, key))

    async def delete_many(self, keys: Iterable[str]) -> int:
        version = await self._current("delete_many")
        if version is None:
            return 0
        return await self.cache.delete_many([self._part(version, k) for k in keys])

    async def delete_pattern(self, pattern: str) -> int:
        """Delete the current version's keys matching the glob `pattern` (``"user:*"``)."""
        self._check_pattern(pattern)
        version = await self._current("delete_pattern")
        if version is None:
            return 0
        return await self.cache.delete_pattern(self._pattern(version, pattern))
