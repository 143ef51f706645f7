"""The sizing rule of a Bloom filter: how many bits and hash probes a capacity and error rate need.

Every filter of this plugin (in memory or in Redis) is sized here, so the two kinds agree bit
for bit and a snapshot of one loads into the other. The rule is the textbook optimum for
``n`` items at false-positive rate ``p``:

- bits ``m = ceil(-n ln p / (ln 2)^2)``: the fewest bits that reach ``p`` at ``n`` items;
- probes ``k = round(m / n * ln 2)``, at least 1: the number of bits each key sets.

``m`` is never padded to a round size (a power of two, a whole word): the bit array holds
exactly ``m`` bits, so it is within one bit of the optimum rather than up to twice it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BloomParams", "optimal_bits", "optimal_hashes"]

_LN2 = math.log(2)
_LN2_SQUARED = _LN2 * _LN2


def _check_capacity(capacity: Any) -> int:
    """`capacity` as an int, or a ValueError/TypeError that names the argument and the range."""
    if isinstance(capacity, bool) or not isinstance(capacity, (int, float)):
        raise TypeError(
            f"capacity must be a whole number of items, 1 or more (e.g. capacity=1_000_000); "
            f"got {type(capacity).__name__} {capacity!r}."
        )
    if isinstance(capacity, float) and not (math.isfinite(capacity) and capacity.is_integer()):
        raise ValueError(f"capacity must be a whole number of items, 1 or more; got {capacity!r}.")
    if capacity <= 0:
        raise ValueError(
            f"capacity must be 1 or more (the number of items the filter is sized for); "
            f"got {capacity!r}."
        )
    return int(capacity)


def _check_error_rate(error_rate: Any) -> float:
    """`error_rate` as a float strictly between 0 and 1, or an error naming the range."""
    if isinstance(error_rate, bool) or not isinstance(error_rate, (int, float)):
        raise TypeError(
            f"error_rate must be a number between 0 and 1, exclusive (e.g. error_rate=0.01 "
            f"for 1%); got {type(error_rate).__name__} {error_rate!r}."
        )
    if not 0 < error_rate < 1:  # also refuses NaN, which compares false to everything
        raise ValueError(
            f"error_rate must be between 0 and 1, exclusive (0 < error_rate < 1, e.g. 0.01 "
            f"for 1%); got {error_rate!r}."
        )
    return float(error_rate)


def optimal_bits(capacity: int, error_rate: float) -> int:
    """``ceil(-n ln p / (ln 2)^2)``: the fewest bits that give `error_rate` at `capacity`."""
    return max(1, math.ceil(-capacity * math.log(error_rate) / _LN2_SQUARED))


def optimal_hashes(num_bits: int, capacity: int) -> int:
    """``round(m / n * ln 2)``, at least 1: the probe count that minimises false positives."""
    return max(1, round(num_bits / capacity * _LN2))


@dataclass(frozen=True)
class BloomParams:
    """The parameters of one filter: what it was asked for and what that costs.

    Build it with `for_capacity`; the constructor takes the four numbers as they are (a
    snapshot or a Redis header carries them), so a filter written by another version of the
    sizing rule still loads with the exact bit count it was written with.
    """

    capacity: int
    error_rate: float
    num_bits: int
    num_hashes: int

    @classmethod
    def for_capacity(cls, capacity: Any, error_rate: Any) -> BloomParams:
        """Validate `capacity` and `error_rate` and size the filter by the optimum rule."""
        n = _check_capacity(capacity)
        p = _check_error_rate(error_rate)
        m = optimal_bits(n, p)
        return cls(capacity=n, error_rate=p, num_bits=m, num_hashes=optimal_hashes(m, n))

    @property
    def optimum_bits(self) -> float:
        """The real-valued optimum ``-n ln p / (ln 2)^2``, before rounding up."""
        return -self.capacity * math.log(self.error_rate) / _LN2_SQUARED

    @property
    def bits_over_optimum(self) -> float:
        """``num_bits / optimum_bits``: 1.0 is the theoretical minimum for this n and p."""
        return self.num_bits / self.optimum_bits

    @property
    def num_bytes(self) -> int:
        """Bytes the bit array occupies (the last byte may hold up to 7 unused bits)."""
        return (self.num_bits + 7) // 8

    def expected_error_rate(self, items: int | None = None) -> float:
        """``(1 - e^(-k n / m))^k``: the false-positive rate expected after `items` adds.

        With ``items`` left out, at ``capacity`` items: close to ``error_rate``, off only by
        the rounding of ``m`` and ``k`` to whole numbers.
        """
        n = self.capacity if items is None else items
        k, m = self.num_hashes, self.num_bits
        return float((1.0 - math.exp(-k * n / m)) ** k)
