"""The built-in ``memory`` backend: a process-local store with per-entry expiry.

Entries live in the configured strategy's mapping (``none``: a dict; ``lru``, ``ttl``...
from plugins), as ``(expires_at, value)``. Values are kept as live objects by default, as
``functools.lru_cache`` does: a caller who mutates a value after ``set`` or ``get`` mutates
the cached copy. Set ``serialize = true`` to store encoded bytes instead, exactly like a
network backend would (isolated copies, the serializer's type rules).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .._missing import MISSING
from ..backend import InProcessBackend
from ..errors import CacheError
from ..keys import glob_to_regex
from ..plugins import hookimpl
from ..strategy import CacheStrategy


class MemoryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    serialize: bool = False


class MemoryBackend(InProcessBackend):
    """Thread-safe (one lock per store) and asyncio-safe (no await inside an operation)."""

    name: ClassVar[str] = "memory"
    Options: ClassVar[type[BaseModel]] = MemoryOptions

    def __init__(
        self,
        options: Any = None,
        *,
        config: Any,
        registry: Any = None,
        strategy: CacheStrategy | None = None,
    ) -> None:
        super().__init__(options, config=config, registry=registry)
        self.stores_objects = not self.options.serialize  # type: ignore[attr-defined]
        if strategy is None:
            strategy = _strategy_from_config(config, registry)
        self.strategy = strategy
        self._store = strategy.store
        self._lock = strategy.lock
        self._acquire, self._release = strategy.lock.acquire, strategy.lock.release
        self._clock = strategy.clock
        self._lifetime = strategy.entry_lifetime
        self._locks: dict[str, tuple[float, str]] = {}
        self._fences: dict[str, int] = {}

    # Entries are (expires_at or None, value); an expired entry is dropped when touched.
    def _live(self, key: Hashable, now: float) -> Any:
        entry = self._store.get(key, MISSING)
        if entry is MISSING:
            return MISSING
        expires = entry[0]
        if expires is not None and expires <= now:
            self._store.pop(key, None)
            return MISSING
        return entry

    def _put(self, key: str, value: Any, ttl: float | None, now: float) -> None:
        lifetime = self._lifetime
        if lifetime is not None and (ttl is None or ttl > lifetime):
            ttl = lifetime  # the store drops it then anyway: say so in ttl()
        try:
            self._store[key] = (None if ttl is None else now + ttl, value)
        except ValueError:  # larger than the whole store: not kept
            self._store.pop(key, None)

    def get(self, key: str) -> Any:
        self._acquire()
        try:
            entry = self._live(key, self._clock())
        finally:
            self._release()
        return MISSING if entry is MISSING else entry[1]

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        with self._lock:
            now = self._clock()
            entries = [self._live(k, now) for k in keys]
        return [MISSING if e is MISSING else e[1] for e in entries]

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        with self._lock:
            self._put(key, value, ttl, self._clock())

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        with self._lock:
            now = self._clock()
            for key, value in items.items():
                self._put(key, value, ttl, now)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        with self._lock:
            now = self._clock()
            if self._live(key, now) is not MISSING:
                return False
            self._put(key, value, ttl, now)
            return key in self._store

    def delete(self, key: str) -> bool:
        with self._lock:
            found = self._live(key, self._clock()) is not MISSING
            self._store.pop(key, None)
            return found

    def delete_many(self, keys: Sequence[str]) -> int:
        with self._lock:
            now = self._clock()
            count = 0
            for key in keys:
                if self._live(key, now) is not MISSING:
                    count += 1
                self._store.pop(key, None)
            return count

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key, self._clock()) is not MISSING

    def incr(self, key: str, delta: int) -> int:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            expires, current = (None, 0) if entry is MISSING else entry
            number = self._as_int(key, current)
            result = number + delta
            stored: Any = result if self.stores_objects else str(result).encode()
            try:
                self._store[key] = (expires, stored)
            except ValueError:
                self._store.pop(key, None)
            return result

    @staticmethod
    def _as_int(key: str, value: Any) -> int:
        try:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):
                return value
            if isinstance(value, (bytes, str)):
                return int(value)
            raise ValueError
        except ValueError:
            raise CacheError(
                f"incr on {key!r}: the stored value is not an integer ({value!r}); delete the "
                "key or store an int first."
            ) from None

    def ttl(self, key: str) -> float | None:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is MISSING:
                return 0
            return None if entry[0] is None else max(entry[0] - now, 0.0)

    def expire(self, key: str, ttl: float | None) -> bool:
        with self._lock:
            now = self._clock()
            entry = self._live(key, now)
            if entry is MISSING:
                return False
            self._put(key, entry[1], ttl, now)
            return True

    def delete_pattern(self, pattern: str) -> int:
        regex = glob_to_regex(pattern)
        with self._lock:
            now = self._clock()
            doomed = [k for k in list(self._store) if isinstance(k, str) and regex.match(k)]
            count = 0
            for key in doomed:
                if self._live(key, now) is not MISSING:
                    count += 1
                self._store.pop(key, None)
            return count

    # --- locks: kept apart from cache entries, so no eviction strategy can drop one -------
    def _lock_holder(self, key: str, now: float) -> str | None:
        held = self._locks.get(key)
        if held is None:
            return None
        if held[0] <= now:
            del self._locks[key]
            return None
        return held[1]

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        with self._lock:
            now = self._clock()
            holder = self._lock_holder(key, now)
            if holder == token:
                return self._fences.get(key, 0)
            if holder is not None:
                return None
            self._locks[key] = (now + ttl, token)
            fence = self._fences[key] = self._fences.get(key, 0) + 1
            return fence

    def lock_release(self, key: str, token: str) -> bool:
        with self._lock:
            if self._lock_holder(key, self._clock()) != token:
                return False
            del self._locks[key]
            return True

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            if self._lock_holder(key, now) != token:
                return False
            self._locks[key] = (now + ttl, token)
            return True

    def lock_owner(self, key: str) -> str | None:
        with self._lock:
            return self._lock_holder(key, self._clock())

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)


def _strategy_from_config(config: Any, registry: Any) -> CacheStrategy:
    from ..components import build_strategy

    return build_strategy(config, registry)


@hookimpl
def cachemesh_register_backends() -> list[type[InProcessBackend]]:
    return [MemoryBackend]
