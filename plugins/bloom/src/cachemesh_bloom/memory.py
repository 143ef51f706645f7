"""`BloomFilter`: an in-process Bloom filter, the guard against cache penetration.

A cache miss for a key that exists nowhere goes to the database every time; a flood of such
keys (made up ids, a scraper walking ids) bypasses the cache entirely. A Bloom filter
holding every key that *does* exist answers "definitely not" for the rest in about a
microsecond, without touching the cache or the source. It never says "no" for a key it was
given (no false negatives), and says "maybe" for a key it was not given with probability
``error_rate`` once it holds ``capacity`` keys.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from . import batch
from .hashing import (
    DEFAULT_SCHEME,
    SCHEMES,
    Key,
    check_hash_key,
    key_hash,
    new_hash_key,
    probe_indexes,
)
from .kernels import AddFn, CheckFn, Storage, bind_kernels
from .params import BloomParams
from .serialization import dump, load, pack_header

__all__ = ["BloomFilter"]

StorageChoice = Literal["auto", "bitarray", "bytearray"]


def _bitarray_type() -> Any:
    try:
        return importlib.import_module("bitarray").bitarray
    except ImportError:
        return None


def _new_bits(
    storage: StorageChoice, num_bits: int, initial: bytes | memoryview | None = None
) -> tuple[Storage, Any]:
    """A bit array of `num_bits` bits in the chosen store: zeros, or the bytes `initial`."""
    if storage not in ("auto", "bitarray", "bytearray"):
        raise ValueError(f"storage must be 'auto', 'bitarray' or 'bytearray'; got {storage!r}.")
    bitarray = _bitarray_type() if storage in ("auto", "bitarray") else None
    if storage == "bitarray" and bitarray is None:
        raise ImportError(
            "storage='bitarray' needs the bitarray package: pip install 'cachemesh-bloom[fast]' "
            "(or leave storage='auto' to use it only when it is installed)."
        )
    if bitarray is None:
        size = (num_bits + 7) // 8
        return "bytearray", bytearray(size) if initial is None else bytearray(initial)
    if initial is None:
        bits = bitarray(num_bits, endian="big")
        bits.setall(0)
    else:
        bits = bitarray(endian="big")
        bits.frombytes(bytes(initial))
        del bits[num_bits:]  # the unused bits of the last byte
    return "bitarray", bits


class BloomFilter:
    """A Bloom filter in this process's memory.

    ``BloomFilter(capacity=1_000_000, error_rate=0.01)`` sizes the bit array for
    `capacity` keys at a false-positive rate of `error_rate` (see `BloomParams`).

    - ``add(key)``: remember `key` (``str``, hashed as UTF-8, or bytes).
    - ``might_contain(key)``: ``False`` means `key` was never added; ``True`` means it
      probably was (wrongly, for about `error_rate` of the keys never added, once the
      filter holds `capacity` keys; more past that).
    - ``add_many(keys)`` / ``might_contain_many(keys)``: the same for many keys at once,
      vectorised with numpy when it is installed.
    - ``await amight_contain(key)``: the same answer as ``might_contain``, for code that
      treats every filter alike (the Redis filter does I/O there).
    - ``len(f)``: how many keys were added (each ``add`` counts, repeats included).

    `key` is the secret that places keys on bits: random per filter by default; pass the
    same 16-32 bytes to build filters that agree across processes. `storage` picks the bit
    array: ``"bitarray"`` (the C extension; fastest, install ``cachemesh-bloom[fast]``),
    ``"bytearray"`` (no dependency) or ``"auto"`` (bitarray when installed). Both give the
    same bits and the same snapshots. Keys are placed by SipHash-2-4 under that secret
    (`hash_scheme`); a snapshot written before SipHash keeps its keyed BLAKE2s placement.

    Thread safety: checks are safe from any number of threads; adds never lose a bit,
    whatever the threads. ``len()`` may miss increments when several threads add at once
    on the bitarray store.
    """

    __slots__ = (
        "__weakref__",
        "_counts",
        "_hash_key",
        "_hasher",
        "_lock",
        "_params",
        "_scheme",
        "_storage",
        "add",
        "bits",
        "might_contain",
    )

    add: AddFn
    might_contain: CheckFn
    #: The bit array itself (a ``bitarray`` or a ``bytearray``), for inspection and tests.
    bits: Any

    def __init__(
        self,
        capacity: int,
        error_rate: float = 0.01,
        *,
        key: bytes | None = None,
        storage: StorageChoice = "auto",
    ) -> None:
        params = BloomParams.for_capacity(capacity, error_rate)
        hash_key = new_hash_key() if key is None else check_hash_key(key)
        self._setup(params, hash_key, storage, count=0, scheme=DEFAULT_SCHEME)

    def _setup(
        self,
        params: BloomParams,
        hash_key: bytes,
        storage: StorageChoice,
        count: int,
        initial: bytes | memoryview | None = None,
        *,
        scheme: int,
    ) -> None:
        self._params = params
        self._hash_key = hash_key
        self._scheme = scheme
        self._hasher = key_hash(scheme, hash_key, params.num_bits, params.num_hashes)
        self._storage, self.bits = _new_bits(storage, params.num_bits, initial)
        self._counts = [count]
        self._lock = threading.Lock()
        self.add, self.might_contain = bind_kernels(
            bits=self.bits,
            storage=self._storage,
            num_bits=params.num_bits,
            num_hashes=params.num_hashes,
            hasher=self._hasher,
            counts=self._counts,
            lock=self._lock,
        )

    # --- parameters ----------------------------------------------------------------------
    @property
    def params(self) -> BloomParams:
        """Capacity, error rate, bit count ``m`` and probe count ``k``."""
        return self._params

    @property
    def capacity(self) -> int:
        return self._params.capacity

    @property
    def error_rate(self) -> float:
        return self._params.error_rate

    @property
    def num_bits(self) -> int:
        """``m``, the size of the bit array in bits."""
        return self._params.num_bits

    @property
    def num_hashes(self) -> int:
        """``k``, the bits each key sets and each check reads."""
        return self._params.num_hashes

    @property
    def hash_key(self) -> bytes:
        """The secret hash key; give it to another filter (``key=``) to share positions."""
        return self._hash_key

    @property
    def hash_scheme(self) -> str:
        """How keys are placed on bits: ``"siphash-2-4"`` (every new filter), or
        ``"blake2s"`` for a filter loaded from a snapshot written before SipHash."""
        return SCHEMES[self._scheme]

    @property
    def storage(self) -> Storage:
        """``"bitarray"`` or ``"bytearray"``: the bit store in use."""
        return self._storage

    # --- use -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._counts[0]

    def __bool__(self) -> bool:
        """Always true, even when empty: ``if bloom:`` means "a filter was given"."""
        return True

    def __contains__(self, key: object) -> bool:
        return self.might_contain(key)

    async def amight_contain(self, key: Key) -> bool:
        """``might_contain`` for async code: no I/O here, the answer is immediate."""
        return self.might_contain(key)

    async def aadd(self, key: Key) -> None:
        """``add`` for async code: no I/O here."""
        self.add(key)

    def add_many(self, keys: Iterable[Key]) -> None:
        """Add every key of `keys` (vectorised with numpy for large batches)."""
        keys = keys if isinstance(keys, Sequence) else list(keys)
        if not self._batchable(keys):
            add = self.add
            for key in keys:
                add(key)
            return
        for start in range(0, len(keys), batch.CHUNK):
            chunk = keys[start : start + batch.CHUNK]
            probes = batch.probe_matrix(batch.hash_values(chunk, self._hasher), self._params)
            batch.set_bits(self.bits, self._storage, probes, self._lock)
            self._counts[0] += len(chunk)

    def might_contain_many(self, keys: Iterable[Key]) -> list[bool]:
        """``might_contain`` of every key of `keys`, in order."""
        keys = keys if isinstance(keys, Sequence) else list(keys)
        if not self._batchable(keys):
            return list(map(self.might_contain, keys))
        out: list[bool] = []
        for start in range(0, len(keys), batch.CHUNK):
            chunk = keys[start : start + batch.CHUNK]
            probes = batch.probe_matrix(batch.hash_values(chunk, self._hasher), self._params)
            out += batch.all_set(self.bits, probes)
        return out

    def _batchable(self, keys: Sequence[Key]) -> bool:
        """Whether the numpy path pays for `keys` (numpy installed, a large batch)."""
        return (
            len(keys) >= batch.MIN_BATCH
            and batch.numpy_or_none() is not None
            and batch.fits(self._hasher)
        )

    def probe_indexes(self, key: Key) -> list[int]:
        """The bit positions `key` sets (what ``add`` and ``might_contain`` look at)."""
        return probe_indexes(key, self._hasher, self._params.num_bits, self._params.num_hashes)

    def clear(self) -> None:
        """Forget every key (the parameters and the hash key stay)."""
        with self._lock:
            if self._storage == "bitarray":
                self.bits.setall(0)
            else:
                self.bits[:] = bytes(len(self.bits))  # same length: never a resize
            self._counts[0] = 0

    def bits_set(self) -> int:
        """How many of the ``m`` bits are 1 (about half when the filter is at capacity)."""
        if self._storage == "bitarray":
            return int(self.bits.count(1))
        return sum(byte.bit_count() for byte in self.bits)

    def expected_error_rate(self) -> float:
        """The false-positive rate to expect now, from the number of keys added."""
        return self._params.expected_error_rate(len(self))

    # --- snapshots -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """A snapshot: header (parameters, hash key, count), the bits, a CRC-32.

        It holds the hash key: treat it as a secret. `from_bytes` loads it, and so does
        `RedisBloomFilter.from_bytes`, into Redis.
        """
        header = pack_header(self._params, self._hash_key, len(self), scheme=self._scheme)
        bits = self.bits.tobytes() if self._storage == "bitarray" else self.bits
        return dump(header, bits)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, storage: StorageChoice = "auto"
    ) -> BloomFilter:
        """Load a `to_bytes` snapshot; raises `BloomFormatError` (a ValueError) when the bytes
        are truncated, altered, or not a snapshot."""
        header, bits = load(data)
        self = cls.__new__(cls)
        self._setup(
            header.params,
            header.hash_key,
            storage,
            header.count,
            initial=bits,
            scheme=header.scheme,
        )
        return self

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return _from_pickle, (self.to_bytes(),)

    def __eq__(self, other: object) -> bool:
        """Same parameters, hash key, count and bits (the storage does not matter)."""
        if not isinstance(other, BloomFilter):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self) -> str:
        p = self._params
        return (
            f"BloomFilter(capacity={p.capacity}, error_rate={p.error_rate}, "
            f"num_bits={p.num_bits}, num_hashes={p.num_hashes}, count={len(self)}, "
            f"storage={self._storage!r})"
        )


def _from_pickle(data: bytes) -> BloomFilter:
    return BloomFilter.from_bytes(data)
