"""`RedisBloomFilter`: one Bloom filter shared by every process, in one Redis string.

Why one key: the value is the snapshot format of `serialization` without its trailer, a
128-byte header (parameters, hash key, count) followed by the bits. The filter is created
atomically with ``SET key header NX``, so two processes that open the same name at once end
up with one set of parameters and one hash key, whichever came first; deleting the key
removes the parameters with the bits, so no stale parameters can outlive their bits (a new
hash key over old bits would make every old key a false negative). One key is also one
Redis Cluster slot: every command here touches only it.

Why ``BITFIELD``: a check is ``BITFIELD key GET u1 o1 ... GET u1 ok``, one command and one
round trip for all ``k`` bits; an add is ``BITFIELD key SET u1 o1 1 ... INCRBY i64 192 1``,
which sets the bits and counts the key in the header in the same atomic command. No Lua,
no module (RedisBloom's ``BF.*`` need the module on the server; this needs Redis 3.2+).

The key positions are those of the in-memory filter (same hashing, same bit order), so
``to_bytes``/``from_bytes`` move a filter between Redis and memory unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NoReturn

from .hashing import (
    DEFAULT_SCHEME,
    SCHEMES,
    Key,
    check_hash_key,
    key_hash,
    new_hash_key,
    probe_indexes,
    same_key,
)
from .memory import BloomFilter
from .params import BloomParams
from .serialization import (
    COUNT_BIT_OFFSET,
    HEADER_BITS,
    HEADER_SIZE,
    BloomFormatError,
    Header,
    dump,
    load,
    pack_header,
    unpack_header,
)

__all__ = ["BloomParameterError", "FilterNotFoundError", "RedisBloomFilter"]

#: Keys per BITFIELD command in ``add_many``/``might_contain_many``.
CHUNK_KEYS = 1000
#: BITFIELD commands per pipeline (one round trip) in the batch methods.
CHUNKS_PER_PIPELINE = 50
#: Largest string Redis stores (``proto-max-bulk-len`` default): 512 MiB.
MAX_REDIS_BITS = 512 * 1024 * 1024 * 8

Command = tuple[Any, ...]


class BloomParameterError(ValueError):
    """A filter of that name exists with other parameters or another hash key."""


class FilterNotFoundError(LookupError):
    """Opening an existing filter by name, and there is none."""


# --- clients -------------------------------------------------------------------------------
def _is_async_client(client: Any) -> bool:
    return inspect.iscoroutinefunction(getattr(client, "execute_command", None))


def _check_binary(client: Any) -> None:
    kwargs = getattr(client, "get_connection_kwargs", None)
    if callable(kwargs) and kwargs().get("decode_responses"):
        raise TypeError(
            "this Redis client decodes responses to str (decode_responses=True), but a Bloom "
            "filter stores binary data; pass a client made with decode_responses=False."
        )


def resolve_clients(source: Any) -> tuple[Any | None, Callable[[], Any] | None]:
    """``(sync client or None, function returning the asyncio client or None)``.

    Accepts a redis-py client (sync or asyncio, standalone or Cluster), a cachemesh cache on
    the ``redis`` backend (``SyncCache``, ``Cache``, ``RedisManager``: their
    ``.backend.client`` and ``.backend.aclient``), or that backend itself.
    """
    backend = getattr(source, "backend", None)
    if backend is not None and not hasattr(source, "execute_command"):
        if not (hasattr(backend, "client") and hasattr(backend, "make_async_client")):
            raise TypeError(
                f"{type(source).__name__} stores in the {getattr(backend, 'name', '?')!r} "
                "backend, not Redis: a RedisBloomFilter needs a cache with backend='redis' "
                "(or use the in-memory BloomFilter)."
            )
        source = backend
    if hasattr(source, "client") and hasattr(source, "make_async_client"):  # RedisBackend
        _check_binary(source.client)
        backend = source
        return backend.client, lambda: backend.aclient
    if not (hasattr(source, "execute_command") and hasattr(source, "pipeline")):
        raise TypeError(
            "RedisBloomFilter needs a redis-py client (redis.Redis, redis.RedisCluster, or a "
            "redis.asyncio one with RedisBloomFilter.aopen), or a cachemesh cache on the redis "
            f"backend; got {type(source).__name__}."
        )
    _check_binary(source)
    if _is_async_client(source):
        client = source
        return None, lambda: client
    return source, None


def _run(client: Any, commands: Sequence[Command]) -> list[Any]:
    """Send `commands` in one round trip (a pipeline without MULTI: Cluster-safe)."""
    if len(commands) == 1:
        return [client.execute_command(*commands[0])]
    with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())


async def _arun(client: Any, commands: Sequence[Command]) -> list[Any]:
    if len(commands) == 1:
        return [await client.execute_command(*commands[0])]
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute())


def _wrong_type(name: str, exc: Exception) -> NoReturn:
    if "WRONGTYPE" in str(exc):
        raise BloomFormatError(
            f"Redis key {name!r} holds another type of value, not a Bloom filter; pick "
            "another name."
        ) from exc
    raise exc


# --- opening -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _OpenRequest:
    """What an open asks for, as commands to send and a check of the replies (no I/O)."""

    name: str
    capacity: int | None
    error_rate: float | None
    hash_key: bytes | None
    create_header: bytes | None

    @classmethod
    def make(cls, name: Any, capacity: Any, error_rate: Any, key: Any) -> _OpenRequest:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty str (the Redis key); got {name!r}.")
        hash_key = None if key is None else check_hash_key(key)
        if capacity is None:
            if error_rate is not None:
                raise ValueError(
                    "error_rate was given without capacity: pass capacity= too to create the "
                    "filter, or neither to open an existing one with its stored parameters."
                )
            return cls(name, None, None, hash_key, None)
        params = BloomParams.for_capacity(capacity, 0.01 if error_rate is None else error_rate)
        if HEADER_BITS + params.num_bytes * 8 > MAX_REDIS_BITS:
            raise ValueError(
                f"capacity={params.capacity} at error_rate={params.error_rate} needs "
                f"{params.num_bytes:,} bytes, more than a Redis string holds (512 MiB); use a "
                "higher error_rate, or split the keys over several filters."
            )
        header = pack_header(params, hash_key or new_hash_key(), 0, scheme=DEFAULT_SCHEME)
        stated = None if error_rate is None else params.error_rate
        return cls(name, params.capacity, stated, hash_key, header)

    def commands(self) -> list[Command]:
        out: list[Command] = []
        if self.create_header is not None:
            out.append(("SET", self.name, self.create_header, "NX"))
        out.append(("GETRANGE", self.name, 0, HEADER_SIZE - 1))
        out.append(("STRLEN", self.name))
        return out

    def check(self, replies: list[Any]) -> tuple[Header, bool]:
        """The stored header, and whether the value must be grown to its full length."""
        raw, length = replies[-2], int(replies[-1])
        if length == 0:
            raise FilterNotFoundError(
                f"there is no Bloom filter named {self.name!r} in this Redis database; pass "
                "capacity= (and error_rate=) to create it."
            )
        header = unpack_header(raw, what=f"Redis key {self.name!r}")
        stored = header.params
        asked = []
        if self.capacity is not None and self.capacity != stored.capacity:
            asked.append(f"capacity={self.capacity}")
        if self.error_rate is not None and self.error_rate != stored.error_rate:
            asked.append(f"error_rate={self.error_rate}")
        if asked:
            raise BloomParameterError(
                f"the Bloom filter {self.name!r} exists with capacity={stored.capacity}, "
                f"error_rate={stored.error_rate} (m={stored.num_bits}, k={stored.num_hashes}), "
                f"not {', '.join(asked)}. Open it without capacity/error_rate to use the stored "
                "ones, delete it first to resize it, or pick another name."
            )
        if self.hash_key is not None and not same_key(self.hash_key, header.hash_key):
            raise BloomParameterError(
                f"the Bloom filter {self.name!r} exists with another hash key than the key= "
                "given; open it without key= to use the stored one, or pick another name."
            )
        expected = HEADER_SIZE + stored.num_bytes
        if length > expected:
            raise BloomFormatError(
                f"Redis key {self.name!r} is {length} bytes, longer than the {expected} its "
                "header allows: it was altered."
            )
        return header, length < expected


# --- the filter ----------------------------------------------------------------------------
class RedisBloomFilter:
    """A Bloom filter in the Redis string `name`, shared by every process that opens it.

    ``RedisBloomFilter(client, "bloom:users", capacity=1_000_000, error_rate=0.01)`` opens
    the filter, creating it when it does not exist (``error_rate`` defaults to 0.01 when
    only ``capacity`` is given, and ``key`` to a random one); ``RedisBloomFilter(client,
    "bloom:users")`` opens an existing one with its stored parameters and hash key (or raises
    `FilterNotFoundError`). Parameters or a ``key=`` that differ from the stored ones raise
    `BloomParameterError`. `name` is the Redis key, used as given (no cache prefix).

    `client` is a redis-py client, or a cachemesh cache on the redis backend (its clients
    are used: sync for the plain methods, asyncio for the ``a``-methods). With an asyncio
    client alone, open with ``await RedisBloomFilter.aopen(client, name, ...)`` and use the
    ``a``-methods; with a sync client alone, the ``a``-methods run it in a worker thread.

    Each ``add``/``might_contain`` is one command (one round trip); the ``_many`` methods
    send 1,000 keys per command and 50 commands per round trip. Redis errors (connection,
    timeout) propagate as redis-py raises them.
    """

    __slots__ = ("_aclient", "_client", "_hash_key", "_hasher", "_name", "_params", "_scheme")

    def __init__(
        self,
        client: Any,
        name: str,
        *,
        capacity: int | None = None,
        error_rate: float | None = None,
        key: bytes | None = None,
    ) -> None:
        sync_client, aclient = resolve_clients(client)
        if sync_client is None:
            raise TypeError(
                "this is an asyncio Redis client: open the filter with "
                "`await RedisBloomFilter.aopen(client, name, ...)`."
            )
        request = _OpenRequest.make(name, capacity, error_rate, key)
        try:
            header, grow = request.check(_run(sync_client, request.commands()))
        except Exception as exc:  # re-raised; WRONGTYPE gets a clearer type
            _wrong_type(request.name, exc)
        self._setup(sync_client, aclient, request.name, header)
        if grow:
            sync_client.execute_command("SETBIT", self._name, self._last_bit, 0)

    @classmethod
    async def aopen(
        cls,
        client: Any,
        name: str,
        *,
        capacity: int | None = None,
        error_rate: float | None = None,
        key: bytes | None = None,
    ) -> RedisBloomFilter:
        """Open (or create) the filter through an asyncio client (or a cachemesh cache)."""
        sync_client, aclient = resolve_clients(client)
        if aclient is None:
            raise TypeError(
                "aopen needs an asyncio Redis client (redis.asyncio.Redis) or a cachemesh cache "
                "on the redis backend; with a sync client, call RedisBloomFilter(client, name)."
            )
        request = _OpenRequest.make(name, capacity, error_rate, key)
        try:
            header, grow = request.check(await _arun(aclient(), request.commands()))
        except Exception as exc:  # re-raised; WRONGTYPE gets a clearer type
            _wrong_type(request.name, exc)
        self = cls.__new__(cls)
        self._setup(sync_client, aclient, request.name, header)
        if grow:
            await aclient().execute_command("SETBIT", self._name, self._last_bit, 0)
        return self

    def _setup(
        self, client: Any, aclient: Callable[[], Any] | None, name: str, header: Header
    ) -> None:
        self._client = client
        self._aclient = aclient
        self._name = name
        self._params = header.params
        self._hash_key = header.hash_key
        self._scheme = header.scheme
        p = header.params
        self._hasher = key_hash(header.scheme, header.hash_key, p.num_bits, p.num_hashes)

    # --- parameters ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The Redis key holding the filter."""
        return self._name

    @property
    def params(self) -> BloomParams:
        return self._params

    @property
    def capacity(self) -> int:
        return self._params.capacity

    @property
    def error_rate(self) -> float:
        return self._params.error_rate

    @property
    def num_bits(self) -> int:
        return self._params.num_bits

    @property
    def num_hashes(self) -> int:
        return self._params.num_hashes

    @property
    def hash_key(self) -> bytes:
        """The stored secret hash key (a ``BloomFilter(key=...)`` with it agrees bit for bit)."""
        return self._hash_key

    @property
    def hash_scheme(self) -> str:
        """``"siphash-2-4"``, or ``"blake2s"`` for a filter created before SipHash (its
        scheme is stored with it, so every process places keys the same way)."""
        return SCHEMES[self._scheme]

    @property
    def _last_bit(self) -> int:
        return HEADER_BITS + self._params.num_bytes * 8 - 1

    def __bool__(self) -> bool:
        """Always true: ``if bloom:`` means "a filter was given", never "it is empty"."""
        return True

    def __repr__(self) -> str:
        p = self._params
        return (
            f"RedisBloomFilter(name={self._name!r}, capacity={p.capacity}, "
            f"error_rate={p.error_rate}, num_bits={p.num_bits}, num_hashes={p.num_hashes})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a RedisBloomFilter holds a live Redis client and cannot be pickled; pickle "
            "filter.snapshot() (an in-memory BloomFilter) or send filter.to_bytes(), and open "
            "the shared filter again by name on the other side."
        )

    # --- commands (no I/O) ---------------------------------------------------------------
    def _offsets(self, key: Key) -> list[int]:
        p = self._params
        return [HEADER_BITS + i for i in probe_indexes(key, self._hasher, p.num_bits, p.num_hashes)]

    def _add_command(self, keys: Sequence[Key]) -> Command:
        sets = chain.from_iterable(
            ("SET", "u1", offset, 1) for key in keys for offset in self._offsets(key)
        )
        return ("BITFIELD", self._name, *sets, "INCRBY", "i64", COUNT_BIT_OFFSET, len(keys))

    def _check_command(self, keys: Sequence[Key]) -> Command:
        gets = chain.from_iterable(
            ("GET", "u1", offset) for key in keys for offset in self._offsets(key)
        )
        return ("BITFIELD", self._name, *gets)

    def _batches(
        self, keys: Iterable[Key], make: Callable[[Sequence[Key]], Command]
    ) -> Iterable[list[Command]]:
        """The commands of each round trip: up to 50 commands of up to 1,000 keys each."""
        keys = keys if isinstance(keys, Sequence) else list(keys)
        per_pipe = CHUNK_KEYS * CHUNKS_PER_PIPELINE
        for start in range(0, len(keys), per_pipe):
            part = keys[start : start + per_pipe]
            yield [make(part[i : i + CHUNK_KEYS]) for i in range(0, len(part), CHUNK_KEYS)]

    def _answers(self, replies: list[Any]) -> list[bool]:
        bits = list(chain.from_iterable(replies))
        k = self._params.num_hashes
        return [0 not in bits[i : i + k] for i in range(0, len(bits), k)]

    def _count_command(self) -> Command:
        return ("BITFIELD", self._name, "GET", "i64", COUNT_BIT_OFFSET)

    def _clear_commands(self) -> list[Command]:
        header = pack_header(self._params, self._hash_key, 0, scheme=self._scheme)
        return [("SET", self._name, header), ("SETBIT", self._name, self._last_bit, 0)]

    def _snapshot(self, value: bytes | None) -> bytes:
        if not value:
            raise FilterNotFoundError(
                f"the Bloom filter {self._name!r} is gone from Redis (deleted or expired)."
            )
        header = unpack_header(value, what=f"Redis key {self._name!r}")
        same = header.params == self._params and header.scheme == self._scheme
        if not same or not same_key(header.hash_key, self._hash_key):
            raise BloomParameterError(
                f"Redis key {self._name!r} now holds another Bloom filter than the one opened "
                "(it was deleted and created again); open it again."
            )
        bits = value[HEADER_SIZE:]
        bits += bytes(self._params.num_bytes - len(bits))
        return dump(value[:HEADER_SIZE], bits)

    # --- sync ----------------------------------------------------------------------------
    def _sync(self) -> Any:
        if self._client is None:
            raise TypeError(
                "this RedisBloomFilter was opened with an asyncio client only: use the "
                "a-methods (await f.amight_contain(key), await f.aadd(key)), or open it with a "
                "sync client too."
            )
        return self._client

    def add(self, key: Key) -> None:
        """Add `key`: one ``BITFIELD`` that sets its bits and counts it."""
        self._sync().execute_command(*self._add_command((key,)))

    def might_contain(self, key: Key) -> bool:
        """False when `key` was never added; True when it probably was. One round trip."""
        return 0 not in self._sync().execute_command(*self._check_command((key,)))

    def add_many(self, keys: Iterable[Key]) -> None:
        """Add every key, 1,000 keys per command, 50,000 per round trip."""
        client = self._sync()
        for commands in self._batches(keys, self._add_command):
            _run(client, commands)

    def might_contain_many(self, keys: Iterable[Key]) -> list[bool]:
        """``might_contain`` of every key, in order."""
        client = self._sync()
        out: list[bool] = []
        for commands in self._batches(keys, self._check_command):
            out += self._answers(_run(client, commands))
        return out

    def count(self) -> int:
        """Keys added so far, by every process (each add counts, repeats included)."""
        return int(self._sync().execute_command(*self._count_command())[0])

    def clear(self) -> None:
        """Forget every key; the parameters and the hash key stay.

        The value is rewritten as a bare header, then grown back to full length; an add
        that lands in between only sets its bits earlier, so nothing needs MULTI.
        """
        _run(self._sync(), self._clear_commands())

    def delete(self) -> bool:
        """Remove the filter from Redis (bits, parameters and hash key); True if it existed.

        Only when no process uses it: one that still has it open would go on with the old
        hash key against a filter created again under the same name.
        """
        return bool(self._sync().execute_command("UNLINK", self._name))

    def to_bytes(self) -> bytes:
        """A snapshot in the `BloomFilter.to_bytes` format (it holds the hash key)."""
        return self._snapshot(self._sync().execute_command("GET", self._name))

    def snapshot(self) -> BloomFilter:
        """An in-memory copy: checks without round trips, or a picklable backup."""
        return BloomFilter.from_bytes(self.to_bytes())

    @classmethod
    def from_bytes(
        cls, client: Any, name: str, data: bytes | bytearray | memoryview, *, replace: bool = False
    ) -> RedisBloomFilter:
        """Store a snapshot (of either kind of filter) under `name` and open it.

        Refuses to overwrite an existing key unless ``replace=True``; replace a filter only
        when no process has it open (those would go on with the old parameters).
        """
        sync_client, _ = resolve_clients(client)
        if sync_client is None:
            raise TypeError("from_bytes needs a sync client; use afrom_bytes with asyncio.")
        header, bits = load(data)
        value = bytes(memoryview(data)[:HEADER_SIZE]) + bytes(bits)
        stored = sync_client.execute_command("SET", name, value, *(() if replace else ("NX",)))
        if not stored:
            raise BloomParameterError(
                f"Redis key {name!r} exists; pass replace=True to overwrite it with the snapshot."
            )
        return cls(client, name, key=header.hash_key)

    # --- asyncio -------------------------------------------------------------------------
    async def _acall(self, command: Command, fallback: Callable[[], Any]) -> Any:
        if self._aclient is None:
            return await asyncio.to_thread(fallback)
        return await self._aclient().execute_command(*command)

    async def aadd(self, key: Key) -> None:
        """``add`` for asyncio code."""
        command = self._add_command((key,))
        await self._acall(command, lambda: self._sync().execute_command(*command))

    async def amight_contain(self, key: Key) -> bool:
        """``might_contain`` for asyncio code: one round trip, the event loop free meanwhile."""
        command = self._check_command((key,))
        replies = await self._acall(command, lambda: self._sync().execute_command(*command))
        return 0 not in replies

    async def aadd_many(self, keys: Iterable[Key]) -> None:
        for commands in self._batches(keys, self._add_command):
            await self._apipeline(commands)

    async def amight_contain_many(self, keys: Iterable[Key]) -> list[bool]:
        out: list[bool] = []
        for commands in self._batches(keys, self._check_command):
            out += self._answers(await self._apipeline(commands))
        return out

    async def _apipeline(self, commands: list[Command]) -> list[Any]:
        if self._aclient is None:
            return await asyncio.to_thread(_run, self._sync(), commands)
        return await _arun(self._aclient(), commands)

    async def acount(self) -> int:
        command = self._count_command()
        return int((await self._acall(command, lambda: self._sync().execute_command(*command)))[0])

    async def aclear(self) -> None:
        await self._apipeline(self._clear_commands())

    async def adelete(self) -> bool:
        command = ("UNLINK", self._name)
        return bool(await self._acall(command, lambda: self._sync().execute_command(*command)))

    async def ato_bytes(self) -> bytes:
        command = ("GET", self._name)
        value = await self._acall(command, lambda: self._sync().execute_command(*command))
        return self._snapshot(value)

    @classmethod
    async def afrom_bytes(
        cls, client: Any, name: str, data: bytes | bytearray | memoryview, *, replace: bool = False
    ) -> RedisBloomFilter:
        """`from_bytes` through an asyncio client."""
        _, aclient = resolve_clients(client)
        if aclient is None:
            raise TypeError("afrom_bytes needs an asyncio client; use from_bytes with a sync one.")
        header, bits = load(data)
        value = bytes(memoryview(data)[:HEADER_SIZE]) + bytes(bits)
        stored = await aclient().execute_command("SET", name, value, *(() if replace else ("NX",)))
        if not stored:
            raise BloomParameterError(
                f"Redis key {name!r} exists; pass replace=True to overwrite it with the snapshot."
            )
        return await cls.aopen(client, name, key=header.hash_key)
