"""``add_many`` and ``might_contain_many`` for large batches, with numpy when it is installed.

Why: in a batch, each key still needs its own hash value, but the hashing loop runs in C
(``map`` over the SipHash function straight into ``numpy.fromiter``) and the ``k`` probes
of every key are computed and applied as arrays (``bench/bench_bloom.py``). numpy is
optional: without it, or for small batches where array set-up costs more than it saves,
the per-key kernels run in a loop.

The probes are exactly those of `hashing.probe_indexes`: ``a = x mod m``,
``b = (x div m) mod s + 1``, probe ``i`` at ``(a + i b) mod m``, computed here by adding
``b`` and subtracting ``m`` on overflow.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from functools import lru_cache
from itertools import repeat
from types import ModuleType
from typing import Any

from .hashing import Key, KeyHash, step_span
from .params import BloomParams

#: An int64 numpy array (typed loosely: numpy is optional, and absent when type checking).
Probes = Any

__all__ = [
    "CHUNK",
    "MIN_BATCH",
    "all_set",
    "fits",
    "hash_values",
    "numpy_or_none",
    "probe_matrix",
    "set_bits",
]

#: Below this many keys a batch goes through the per-key kernels (arrays cost set-up time).
MIN_BATCH = 256
#: Keys per round of array work: bounds the temporary arrays (k * 8 bytes a key) to a few MB.
CHUNK = 16_384


@lru_cache(maxsize=1)
def numpy_or_none() -> ModuleType | None:
    """numpy if it is installed, else None; imported on the first large batch only, so
    importing the plugin never pays for numpy's import (~0.1 s)."""
    try:
        return importlib.import_module("numpy")
    except ImportError:
        return None


def fits(hasher: KeyHash) -> bool:
    """Whether the hash values fit numpy's uint64: all but scheme 1 ones when ``m s >= 2**64``."""
    return hasher.bound <= 1 << 64


def hash_values(keys: Sequence[Key], hasher: KeyHash) -> Probes:
    """The hash values ``x`` of `keys`, in order, as a uint64 array (`fits` must hold)."""
    _np = numpy_or_none()
    assert _np is not None
    try:  # str and bytes keys: the whole loop in C
        return _np.fromiter(
            map(hasher.fn, repeat(hasher.arg), keys), dtype=_np.uint64, count=len(keys)
        )
    except TypeError:  # bytes-like keys among them (or not a key at all: the error says)
        return _np.fromiter(map(hasher, keys), dtype=_np.uint64, count=len(keys))


def probe_matrix(values: Probes, params: BloomParams) -> Probes:
    """An ``(n, k)`` int64 array: row ``j`` holds the probes of the ``j``-th hash value."""
    _np = numpy_or_none()
    assert _np is not None
    m = _np.uint64(params.num_bits)
    span = _np.uint64(step_span(params.num_bits, params.num_hashes))
    a = (values % m).astype(_np.int64)
    b = (values // m % span).astype(_np.int64) + 1
    out = _np.empty((len(a), params.num_hashes), dtype=_np.int64)
    out[:, 0] = a
    m_int = params.num_bits
    for i in range(1, params.num_hashes):
        a += b
        a -= m_int * (a >= m_int)
        out[:, i] = a
    return out


def set_bits(bits: Any, storage: str, probes: Probes, lock: threading.Lock) -> None:
    """Set every bit in `probes` (any shape)."""
    _np = numpy_or_none()
    assert _np is not None
    flat = _np.ascontiguousarray(probes.ravel())
    if storage == "bitarray":
        bits[memoryview(flat)] = 1  # one C call: atomic with respect to other threads
        return
    view = _np.frombuffer(bits, dtype=_np.uint8)
    masks = (_np.int64(128) >> (flat & 7)).astype(_np.uint8)
    with lock:
        _np.bitwise_or.at(view, flat >> 3, masks)


def all_set(bits: Any, probes: Probes) -> list[bool]:
    """For each row of `probes`, whether all its bits are set."""
    _np = numpy_or_none()
    assert _np is not None
    view = _np.frombuffer(bits, dtype=_np.uint8)
    masks = (_np.int64(128) >> (probes & 7)).astype(_np.uint8)
    hits = (view[probes >> 3] & masks) != 0
    result: list[bool] = hits.all(axis=1).tolist()
    return result
