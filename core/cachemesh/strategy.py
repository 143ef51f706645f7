"""`CacheStrategy`: an in-process store whose eviction rule is a pluggable component.

A strategy owns a mapping (usually a cachetools cache) guarded by a lock, so it is safe
from many threads and from asyncio tasks. It is used directly (the seed's ``LRUCache``,
``TTLCache``, with ``.cached`` on ``def`` and ``async def``) and as the store of the
``memory`` backend, picked by ``strategy = "..."`` in the config file.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from typing import Any, ClassVar, TypeVar, overload

from pydantic import BaseModel

from ._missing import MISSING
from .component import Component
from .decorators import KeyOf, argument_key, wrap_cached

F = TypeVar("F", bound=Callable[..., Any])
Clock = Callable[[], float]


class CacheStrategy(Component, ABC):
    """Base class of eviction strategies: subclasses say which mapping holds the entries.

    Keyword arguments are options (validated by ``Options``): ``LRUCache(max_size=1000)``.
    `clock` is the time source for strategies that expire entries; tests pass a fake one.
    """

    kind: ClassVar[str] = "strategy"

    def __init__(
        self, options: Any = None, *, clock: Clock = time.monotonic, **kwargs: Any
    ) -> None:
        if options is not None and not isinstance(options, (Mapping, BaseModel)):
            raise TypeError(
                f"{type(self).__name__}() takes its options by keyword, e.g. "
                f"{type(self).__name__}({self._example_options()}); got {options!r}."
            )
        merged = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
        merged.update(kwargs)
        self.options = self.parse_options(merged)
        self.clock = clock
        self.lock = threading.Lock()
        self.store: MutableMapping[Hashable, Any] = self.make_store()

    @property
    def entry_lifetime(self) -> float | None:
        """Longest time, in seconds, this store keeps any entry after its write (None: no
        limit). The memory backend caps per-entry timeouts with it, so ``ttl()`` tells
        the truth on a store that expires entries itself."""
        return None

    @classmethod
    def _example_options(cls) -> str:
        return ", ".join(
            f"{name}={field.default!r}" for name, field in cls.Options.model_fields.items()
        )

    @abstractmethod
    def make_store(self) -> MutableMapping[Hashable, Any]:
        """Build the mapping that holds entries and applies this strategy's eviction."""

    # --- mapping-like operations, each under the lock ------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        with self.lock:
            try:
                return self.store[key]
            except KeyError:
                return default

    def set(self, key: Hashable, value: Any) -> None:
        with self.lock:
            try:
                self.store[key] = value
            except ValueError:  # larger than the whole cache (cachetools): not stored
                self.store.pop(key, None)

    def delete(self, key: Hashable) -> bool:
        with self.lock:
            return self.store.pop(key, MISSING) is not MISSING

    def pop(self, key: Hashable, default: Any = None) -> Any:
        with self.lock:
            return self.store.pop(key, default)

    def clear(self) -> None:
        with self.lock:
            self.store.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self.lock:
            return key in self.store

    def __len__(self) -> int:
        with self.lock:
            return len(self.store)

    # --- the decorator --------------------------------------------------------------------
    @overload
    def cached(self, func: F) -> F: ...
    @overload
    def cached(self, func: None = None, *, key: KeyOf | None = None) -> Callable[[F], F]: ...

    def cached(self, func: F | None = None, *, key: KeyOf | None = None) -> F | Callable[[F], F]:
        """Cache a ``def`` or ``async def`` function's results in this store, by arguments.

        Usable bare (``@lru.cached``) or called (``@lru.cached(key=...)``); `key` receives
        ``(args, kwargs)`` and returns the exact store key (so direct ``get``/``set`` can
        share it). The default key includes the function, so functions never share entries.
        """
        store = self.store
        # acquire()/release() bound once: half the cost of `with lock:` on the hit path.
        acquire, release = self.lock.acquire, self.lock.release

        def get(k: Hashable) -> Any:
            acquire()
            try:
                return store[k]
            except KeyError:
                return MISSING
            finally:
                release()

        def set_(k: Hashable, value: Any) -> None:
            acquire()
            try:
                store[k] = value
            except ValueError:  # larger than the whole store: not kept
                store.pop(k, None)
            finally:
                release()

        def decorate(f: F) -> F:
            key_of = key if key is not None else argument_key(f)
            return wrap_cached(f, key_of=key_of, get=get, set=set_)

        return decorate(func) if func is not None else decorate

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump().items())
        return f"{type(self).__name__}({opts})"
