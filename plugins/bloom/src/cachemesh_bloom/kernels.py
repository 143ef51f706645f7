"""The per-key hot path: ``add`` and ``might_contain`` as closures over one filter's state.

Closures rather than methods: the bit array, sizes and hash function are read as closure
variables (the cheapest reads in CPython), and ``bloom.add(key)`` is a plain function call.
The hash is called as ``fn(arg, key)`` (hashing.py's `KeyHash`): with SipHash that is one C
call that takes ``str`` (as UTF-8) and ``bytes`` as they are, so the common keys need no
type test and no ``encode``; other types raise TypeError there and go through ``as_bytes``.

Two bit stores, one bit order (bit ``i`` is ``0x80 >> (i % 8)`` of byte ``i // 8``, the
order of Redis ``SETBIT``, so snapshots move between memory and Redis unchanged):

- ``bitarray`` (a C extension): the ``k`` probes ``a, a + b, ...`` are a strided slice,
  ``bits[a:a + k*b:b]``, or two when they wrap past the end (see hashing.py), so all ``k``
  bits are read or set by one or two C calls instead of ``k`` trips through the
  interpreter. A check reads bit ``a`` alone first: in a filter at capacity about half the
  bits are 0, so half the absent keys stop there, before ``b`` and the slice are computed;
  a present key pays one more index for it. Each slice assignment is one C call, so
  concurrent adds never lose a bit, without a lock.
- ``bytearray`` (no dependency): one probe at a time; setting a bit is read, OR, write, so
  ``add`` holds a lock (two threads setting two bits of one byte could otherwise lose one,
  a false negative).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

from .hashing import KeyHash, as_bytes, step_span

__all__ = ["AddFn", "CheckFn", "Kernels", "Storage", "bind_kernels"]

Storage = Literal["bitarray", "bytearray"]
AddFn = Callable[[Any], None]
CheckFn = Callable[[Any], bool]
Kernels = tuple[AddFn, CheckFn]


def _bitarray_kernels(bits: Any, m: int, k: int, hasher: KeyHash, counts: list[int]) -> Kernels:
    span = step_span(m, k)
    fn, arg = hasher.fn, hasher.arg

    def add(key: Any) -> None:
        try:
            x = fn(arg, key)
        except TypeError:  # bytearray, memoryview; or not a key: as_bytes says so
            x = fn(arg, as_bytes(key))
        a = x % m
        b = x // m % span + 1
        stop = a + k * b
        if stop - b < m:  # the last probe is before the end: one slice
            bits[a:stop:b] = 1
        else:  # the probes wrap around once: up to the end, then from the start
            bits[a:m:b] = 1
            bits[(a - m) % b : stop - m : b] = 1
        counts[0] += 1

    def might_contain(key: Any) -> bool:
        try:
            x = fn(arg, key)
        except TypeError:
            x = fn(arg, as_bytes(key))
        a = x % m
        if not bits[a]:  # about half the absent keys stop here
            return False
        b = x // m % span + 1
        stop = a + k * b
        if stop - b < m:
            return bits[a:stop:b].all()  # type: ignore[no-any-return]  # a bool
        return bits[a:m:b].all() and bits[(a - m) % b : stop - m : b].all()  # type: ignore[no-any-return]

    return add, might_contain


def _bytearray_kernels(
    bits: bytearray, m: int, k: int, hasher: KeyHash, counts: list[int], lock: threading.Lock
) -> Kernels:
    span = step_span(m, k)
    fn, arg = hasher.fn, hasher.arg
    rounds = range(k)
    later_rounds = range(k - 1)

    def add(key: Any) -> None:
        try:
            x = fn(arg, key)
        except TypeError:
            x = fn(arg, as_bytes(key))
        a = x % m
        b = x // m % span + 1
        with lock:
            for _ in rounds:
                bits[a >> 3] |= 128 >> (a & 7)
                a += b
                if a >= m:
                    a -= m
            counts[0] += 1

    def might_contain(key: Any) -> bool:
        try:
            x = fn(arg, key)
        except TypeError:
            x = fn(arg, as_bytes(key))
        a = x % m
        if not bits[a >> 3] & (128 >> (a & 7)):  # before b: half the absent keys stop here
            return False
        b = x // m % span + 1
        for _ in later_rounds:
            a += b
            if a >= m:
                a -= m
            if not bits[a >> 3] & (128 >> (a & 7)):
                return False
        return True

    return add, might_contain


def bind_kernels(
    *,
    bits: Any,
    storage: Storage,
    num_bits: int,
    num_hashes: int,
    hasher: KeyHash,
    counts: list[int],
    lock: threading.Lock,
) -> Kernels:
    """``(add, might_contain)`` for one filter.

    `counts` is a one-item list that ``add`` increments (the filter's ``len``); `lock`
    guards the bytearray store (the bitarray kernels do not need it).
    """
    if storage == "bitarray":
        return _bitarray_kernels(bits, num_bits, num_hashes, hasher, counts)
    return _bytearray_kernels(bits, num_bits, num_hashes, hasher, counts, lock)
