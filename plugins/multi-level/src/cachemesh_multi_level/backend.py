"""The ``multi-level`` backend: an in-process L1 in front of a shared L2, sync and async.

Reads try L1, then L2; an L2 hit is copied into L1 for no longer than the entry has left
in L2 and never longer than ``l1_ttl_cap``. Writes go to L2 first (the store of record)
together with the invalidation that makes other processes drop their copies, then through
to this process's L1. Counters, TTLs and locks live in L2 only: they must be shared.

By default both levels hold the serializer's payloads, so an L1 copy is never a live
object another caller could mutate; ``l1_values = "objects"`` trades that for hits that
skip decoding, and ``"copies"`` skips it too but hands each caller its own (values.py).

An L1 hit is the hot path: ``get`` and ``aget`` are functions built once in the
constructor (`_hit_path`) that read L1's store directly (l1read.py) and only call further
methods on a miss; the class methods are the same logic, spelled out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from cachemesh import MISSING, CacheBackend, InProcessBackend, get_registry
from pydantic import BaseModel

from .guard import L1Guard
from .l1read import hit_function
from .l2io import l2_access
from .levels import build_levels
from .options import MultiLevelOptions
from .pubsub import invalidation_for
from .values import CopyValues, ObjectValues, PayloadValues

if TYPE_CHECKING:
    from cachemesh import CacheConfig, ComponentRegistry


def _no_value(key: str) -> Any:
    """The async hit function's miss: the coroutine awaits L2 itself."""
    return MISSING


class MultiLevelBackend(CacheBackend):
    """L1 (in-process) + L2 (shared), coherent across processes within stated bounds."""

    name: ClassVar[str] = "multi-level"
    Options: ClassVar[type[BaseModel]] = MultiLevelOptions
    stores_objects = False

    def __init__(
        self,
        options: Any = None,
        *,
        config: CacheConfig,
        registry: ComponentRegistry | None = None,
        levels: Sequence[CacheBackend | None] = (None, None),
    ) -> None:
        """`levels` may hand in ready backends (None: build that level from its spec);
        only the levels built here are closed by `close()`."""
        super().__init__(options, config=config, registry=registry)
        opts: MultiLevelOptions = self.options  # type: ignore[assignment]
        registry = registry if registry is not None else get_registry()
        objects = opts.l1_values != "payloads"
        self._owned: list[CacheBackend] = []
        try:
            l1, l2 = build_levels(opts, levels, config, registry, self._owned)
            self._values = (
                CopyValues(config, registry)
                if opts.l1_values == "copies"
                else ObjectValues(config, registry)
                if objects
                else PayloadValues()
            )
            self.channel = opts.channel or f"{config.CACHE_KEY_PREFIX}:cachemesh:l1-invalidate"
            self._guard = L1Guard(l1)
            # Last: from here a thread runs, and nothing below can fail.
            #: How other processes hear of this one's writes (and this one of theirs).
            self.invalidation = invalidation_for(opts, self._guard, l2, self.channel, config)
        except BaseException:
            self._close_owned()
            raise
        self.l1: InProcessBackend = l1
        self.l2: CacheBackend = l2
        self.l1_ttl_cap = opts.l1_ttl_cap
        #: L1 keeps decoded objects (then the cache hands values over unencoded).
        self.stores_objects = objects
        self._l1_get = l1.get
        self._l2io = l2_access(l2, self.invalidation)
        self._closed = False
        #: How an L1 hit is read: "direct" (the memory store, l1read.py) or "l1.get".
        self.hit_path = self._hit_path()

    def _hit_path(self) -> str:
        """Bind ``get``/``aget`` of this instance to functions that serve an L1 hit with
        as few calls as a hit on the memory backend (the cache calls ``backend.get``)."""
        hand_out = self._values.hand_out
        get, path = hit_function(self.l1, self._guard, self._get_l2, hand_out)
        hit, _ = hit_function(self.l1, self._guard, _no_value, hand_out)
        amiss = self._aget_l2

        async def aget(key: str) -> Any:
            value = hit(key)
            if value is MISSING:
                return await amiss(key)
            return value

        # Instance attributes win over the class's methods: the cache finds these.
        vars(self).update(get=get, aget=aget)
        return path

    def _l1_ttl(self, ttl: float | None) -> float:
        """How long an L1 copy may live: what L2 gives the entry, at most the cap."""
        cap = self.l1_ttl_cap
        return cap if ttl is None or ttl > cap else ttl

    @property
    def l1_trusted(self) -> bool:
        """False while invalidations may be missed (channel down): reads skip L1."""
        return self._guard.trusted

    def stats(self) -> dict[str, Any]:
        """The coherence state, for monitoring and tests."""
        counters = self.invalidation.stats
        return {
            "invalidation": type(self.invalidation).__name__,
            "channel": self.channel,
            "l1_trusted": self._guard.trusted,
            "received": counters.received,
            "resets": counters.resets,
            "subscriptions": counters.subscriptions,
            "publish_failures": counters.publish_failures,
            "corrupt_entries": self._values.corrupt_entries,
        }

    # --- sync reads -------------------------------------------------------------------
    def get(self, key: str) -> Any:
        # Replaced per instance by `_hit_path`'s function; this is what it does.
        if self._guard.trusted:
            value = self._l1_get(key)
            if value is not MISSING:
                hand_out = self._values.hand_out
                return value if hand_out is None else hand_out(value)
        return self._get_l2(key)

    def _get_l2(self, key: str) -> Any:
        self.invalidation.ensure_running()
        stamp = self._guard.stamp(key)
        payload, left = self._l2io.get(key)
        return self._refilled(key, payload, left, stamp)

    def _refilled(self, key: str, payload: Any, left: float | None, stamp: int) -> Any:
        """What L2 answered, decoded for the caller and copied into L1 (if still valid)."""
        if payload is MISSING:
            return MISSING
        values = self._values
        value = values.from_l2(key, payload)
        if value is not MISSING:
            value, kept = values.refill(value, payload)
            self._guard.fill(key, kept, self._l1_ttl(left), stamp)
        return value

    def _from_l1(self, keys: Sequence[str]) -> tuple[list[Any], list[int]]:
        """L1's values for `keys` (MISSING where it has none) and the indexes to ask L2."""
        if not self._guard.trusted:
            return [MISSING] * len(keys), list(range(len(keys)))
        values = self.l1.get_many(keys)
        hand_out = self._values.hand_out
        missing = []
        for i, value in enumerate(values):
            if value is MISSING:
                missing.append(i)
            elif hand_out is not None:
                values[i] = hand_out(value)
        return values, missing

    def _fill_many(
        self,
        values: list[Any],
        missing: list[int],
        wanted: list[str],
        stamps: list[int],
        entries: list[tuple[Any, float | None]],
    ) -> list[Any]:
        refilled = self._refilled
        for i, key, stamp, (payload, left) in zip(missing, wanted, stamps, entries, strict=True):
            values[i] = refilled(key, payload, left, stamp)
        return values

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        values, missing = self._from_l1(keys)
        if not missing:
            return values
        self.invalidation.ensure_running()
        wanted = [keys[i] for i in missing]
        stamps = [self._guard.stamp(k) for k in wanted]
        entries = self._l2io.get_many(wanted)
        return self._fill_many(values, missing, wanted, stamps, entries)

    def get_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        return [None if v is MISSING else v for v in self.get_many(keys)]

    def exists(self, key: str) -> bool:
        if self._guard.trusted and self.l1.exists(key):
            return True
        return self.l2.exists(key)

    def ttl(self, key: str) -> float | None:
        return self.l2.ttl(key)

    # --- sync writes: L2 and the other processes first, then this L1 -----------------
    def set(self, key: str, value: Any, ttl: float | None) -> None:
        payload = self._values.to_l2(key, value)
        stamp = self._guard.stamp(key)
        self._l2io.set(key, payload, ttl)  # and its invalidation, in one round trip on Redis
        self._guard.write(key, self._values.written(value, payload), self._l1_ttl(ttl), stamp)

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if not items:
            return
        guard = self._guard
        payloads = self._payloads(items)
        stamps = {key: guard.stamp(key) for key in items}
        self._l2io.set_many(payloads, ttl)
        self._write_many(items, payloads, ttl, stamps)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        payload = self._values.to_l2(key, value)
        stamp = self._guard.stamp(key)
        stored = self.l2.add(key, payload, ttl)
        if stored:
            self._guard.write(key, self._values.written(value, payload), self._l1_ttl(ttl), stamp)
            self.invalidation.publish_keys((key,))
        return stored

    def _write_many(
        self,
        items: Mapping[str, Any],
        payloads: Mapping[str, Any],
        ttl: float | None,
        stamps: Mapping[str, int],
    ) -> None:
        """Write `items` through to L1 after L2 took `payloads`."""
        guard, written, l1_ttl = self._guard, self._values.written, self._l1_ttl(ttl)
        for key, value in items.items():
            guard.write(key, written(value, payloads[key]), l1_ttl, stamps[key])

    def _payloads(self, items: Mapping[str, Any]) -> Mapping[str, Any]:
        """What L2 stores for `items` (every value encoded before anything is sent)."""
        if not self._values.objects:
            return items
        to_l2 = self._values.to_l2
        return {key: to_l2(key, value) for key, value in items.items()}

    def delete(self, key: str) -> bool:
        found = self.l2.delete(key)
        self._dropped((key,))
        return found

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        count = self.l2.delete_many(keys)
        self._dropped(keys)
        return count

    def incr(self, key: str, delta: int) -> int:
        result = self.l2.incr(key, delta)
        self._dropped((key,))
        return result

    def expire(self, key: str, ttl: float | None) -> bool:
        changed = self.l2.expire(key, ttl)
        self._dropped((key,))  # an L1 copy could otherwise outlive the new expiry
        return changed

    def delete_pattern(self, pattern: str) -> int:
        count = self.l2.delete_pattern(pattern)
        self._guard.drop_pattern(pattern)
        self.invalidation.publish_pattern(pattern)
        return count

    def _dropped(self, keys: Sequence[str]) -> None:
        self._guard.drop(keys)
        self.invalidation.publish_keys(keys)

    def ping(self) -> None:
        self.l2.ping()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.invalidation.close()
        self._close_owned()

    def _close_owned(self) -> None:
        for level in self._owned:
            with contextlib.suppress(Exception):
                level.close()

    # --- async reads --------------------------------------------------------------------
    # L1 is in-process: its sync methods never wait on I/O, so they are called directly.
    async def aget(self, key: str) -> Any:
        # Replaced per instance by `_hit_path`'s function; this is what it does.
        if self._guard.trusted:
            value = self._l1_get(key)
            if value is not MISSING:
                hand_out = self._values.hand_out
                return value if hand_out is None else hand_out(value)
        return await self._aget_l2(key)

    async def _aget_l2(self, key: str) -> Any:
        self.invalidation.ensure_running()
        stamp = self._guard.stamp(key)
        payload, left = await self._l2io.aget(key)
        return self._refilled(key, payload, left, stamp)

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        values, missing = self._from_l1(keys)
        if not missing:
            return values
        self.invalidation.ensure_running()
        wanted = [keys[i] for i in missing]
        stamps = [self._guard.stamp(k) for k in wanted]
        entries = await self._l2io.aget_many(wanted)
        return self._fill_many(values, missing, wanted, stamps, entries)

    async def aget_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        return [None if v is MISSING else v for v in await self.aget_many(keys)]

    async def aexists(self, key: str) -> bool:
        if self._guard.trusted and self.l1.exists(key):
            return True
        return await self.l2.aexists(key)

    async def attl(self, key: str) -> float | None:
        return await self.l2.attl(key)

    # --- async writes -------------------------------------------------------------------
    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        payload = self._values.to_l2(key, value)
        stamp = self._guard.stamp(key)
        await self._l2io.aset(key, payload, ttl)
        self._guard.write(key, self._values.written(value, payload), self._l1_ttl(ttl), stamp)

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if not items:
            return
        guard = self._guard
        payloads = self._payloads(items)
        stamps = {key: guard.stamp(key) for key in items}
        await self._l2io.aset_many(payloads, ttl)
        self._write_many(items, payloads, ttl, stamps)

    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool:
        payload = self._values.to_l2(key, value)
        stamp = self._guard.stamp(key)
        stored = await self.l2.aadd(key, payload, ttl)
        if stored:
            self._guard.write(key, self._values.written(value, payload), self._l1_ttl(ttl), stamp)
            await self.invalidation.apublish_keys((key,))
        return stored

    async def adelete(self, key: str) -> bool:
        found = await self.l2.adelete(key)
        await self._adropped((key,))
        return found

    async def adelete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        count = await self.l2.adelete_many(keys)
        await self._adropped(keys)
        return count

    async def aincr(self, key: str, delta: int) -> int:
        result = await self.l2.aincr(key, delta)
        await self._adropped((key,))
        return result

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        changed = await self.l2.aexpire(key, ttl)
        await self._adropped((key,))
        return changed

    async def adelete_pattern(self, pattern: str) -> int:
        count = await self.l2.adelete_pattern(pattern)
        self._guard.drop_pattern(pattern)
        await self.invalidation.apublish_pattern(pattern)
        return count

    async def _adropped(self, keys: Sequence[str]) -> None:
        self._guard.drop(keys)
        await self.invalidation.apublish_keys(keys)

    async def aping(self) -> None:
        await self.l2.aping()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Joining the thread takes up to one poll (~0.1 s): not on the event loop.
        await asyncio.to_thread(self.invalidation.close)
        for level in self._owned:
            with contextlib.suppress(Exception):
                await level.aclose()

    # --- locks: on L2, the level every process shares (an L1 lock would lock nothing) ----
    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return self.l2.lock_acquire(key, token, ttl)

    def lock_release(self, key: str, token: str) -> bool:
        return self.l2.lock_release(key, token)

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        return self.l2.lock_extend(key, token, ttl)

    def lock_owner(self, key: str) -> str | None:
        return self.l2.lock_owner(key)

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return await self.l2.alock_acquire(key, token, ttl)

    async def alock_release(self, key: str, token: str) -> bool:
        return await self.l2.alock_release(key, token)

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        return await self.l2.alock_extend(key, token, ttl)

    async def alock_owner(self, key: str) -> str | None:
        return await self.l2.alock_owner(key)
