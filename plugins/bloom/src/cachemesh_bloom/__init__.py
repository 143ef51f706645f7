"""cachemesh-bloom: Bloom filters that keep lookups of keys that exist nowhere off the cache.

- `BloomFilter`: in this process's memory (``from cachemesh import BloomFilter``);
- `RedisBloomFilter`: one filter shared by every process, in a Redis string;
- the message filter ``bloom`` (`BloomMessageFilter`), registered through pluggy.
"""

from __future__ import annotations

from cachemesh import Component, hookimpl

from .component import BloomFilterOptions, BloomMessageFilter
from .hashing import Key
from .memory import BloomFilter
from .params import BloomParams, optimal_bits, optimal_hashes
from .redis_filter import BloomParameterError, FilterNotFoundError, RedisBloomFilter
from .serialization import BloomFormatError

__all__ = [
    "BloomFilter",
    "BloomFilterOptions",
    "BloomFormatError",
    "BloomMessageFilter",
    "BloomParameterError",
    "BloomParams",
    "FilterNotFoundError",
    "Key",
    "RedisBloomFilter",
    "optimal_bits",
    "optimal_hashes",
]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_filters() -> list[type[Component]]:
    return [BloomMessageFilter]
