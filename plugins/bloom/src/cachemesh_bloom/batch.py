"""``add_many`` and ``might_contain_many`` for large batches, with numpy when it is installed.

Why: in a batch, each key still needs its own digest (Python, ~0.4 µs), but the ``k`` probes
of every key can be computed and applied as arrays. That removes a third to a half of the
per-key cost (``bench/bench_bloom.py``). numpy is optional: without it, or for small batches
where array set-up costs more than it saves, the per-key kernels run in a loop.

The probes are exactly those of `hashing.probe_indexes`: ``a = h1 mod m``,
``b = h2 mod s + 1``, probe ``i`` at ``(a + i b) mod m``, computed here by adding ``b`` and
subtracting ``m`` on overflow.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from types import ModuleType
from typing import Any

from .hashing import Hasher, as_bytes, step_span
from .params import BloomParams

#: An int64 numpy array (typed loosely: numpy is optional, and absent when type checking).
Probes = Any

__all__ = ["CHUNK", "MIN_BATCH", "all_set", "digests", "numpy_or_none", "probe_matrix", "set_bits"]

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


def digests(keys: Iterable[Any], hasher: Callable[[], Hasher]) -> bytes:
    """The 16-byte digests of `keys`, concatenated in order."""
    out: list[bytes] = []
    append = out.append
    for key in keys:
        if key.__class__ is str:
            key = key.encode()
        elif key.__class__ is not bytes:
            key = as_bytes(key)
        h = hasher()
        h.update(key)
        append(h.digest())
    return b"".join(out)


def probe_matrix(digest_bytes: bytes, params: BloomParams) -> Probes:
    """An ``(n, k)`` int64 array: row ``j`` holds the probes of the ``j``-th digest."""
    _np = numpy_or_none()
    assert _np is not None
    m = params.num_bits
    halves = _np.frombuffer(digest_bytes, dtype="<u8").reshape(-1, 2)
    a = (halves[:, 0] % _np.uint64(m)).astype(_np.int64)
    b = (halves[:, 1] % _np.uint64(step_span(m, params.num_hashes))).astype(_np.int64) + 1
    out = _np.empty((len(a), params.num_hashes), dtype=_np.int64)
    out[:, 0] = a
    for i in range(1, params.num_hashes):
        a += b
        a -= m * (a >= m)
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
