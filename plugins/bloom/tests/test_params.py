"""Sizing: m and k follow the optimum formulas, bits stay within 1.01x of the optimum, and bad
arguments are refused with a message that names the argument and the allowed range."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh_bloom import BloomFilter, BloomParams

SIZES = [
    (1, 0.5),
    (1, 0.01),
    (10, 0.2),
    (1_000, 0.01),
    (100_000, 0.001),
    (1_000_000, 0.1),  # SPEC section 10's example
    (1_000_000, 0.01),
    (12_345_678, 1e-6),
]


@pytest.mark.parametrize(("capacity", "error_rate"), SIZES)
def test_bits_and_hashes_follow_the_formulas(capacity: int, error_rate: float) -> None:
    params = BloomParams.for_capacity(capacity, error_rate)
    optimum = -capacity * math.log(error_rate) / math.log(2) ** 2
    assert params.num_bits == math.ceil(optimum)
    assert params.num_hashes == max(1, round(params.num_bits / capacity * math.log(2)))
    assert params.optimum_bits == pytest.approx(optimum)
    assert 0 <= params.num_bits - optimum < 1, "within one bit of the optimum"
    if optimum >= 100:  # below that, one whole bit is more than 1% of the optimum
        assert 1.0 <= params.bits_over_optimum <= 1.01
    assert params.num_bytes == math.ceil(params.num_bits / 8)


@pytest.mark.parametrize(("capacity", "error_rate"), SIZES[2:])
def test_expected_error_rate_at_capacity_is_the_configured_one(
    capacity: int, error_rate: float
) -> None:
    """With m and k rounded to whole numbers, the theory still gives p (within 5%)."""
    params = BloomParams.for_capacity(capacity, error_rate)
    assert params.expected_error_rate() == pytest.approx(error_rate, rel=0.05)
    assert params.expected_error_rate(0) == 0.0


def test_filter_exposes_its_size(report_figure: Callable[[str, str], None]) -> None:
    bloom = BloomFilter(capacity=1_000_000, error_rate=0.01)
    params = bloom.params
    assert (bloom.num_bits, bloom.num_hashes) == (params.num_bits, params.num_hashes)
    assert (bloom.capacity, bloom.error_rate) == (1_000_000, 0.01)
    if bloom.storage == "bitarray":
        assert len(bloom.bits) == params.num_bits
    else:
        assert len(bloom.bits) == params.num_bytes
    report_figure(
        "bits vs optimum (1e6 keys, 1%)",
        f"m={params.num_bits} k={params.num_hashes} optimum={params.optimum_bits:.1f} "
        f"ratio={params.bits_over_optimum:.7f}",
    )


def test_a_whole_float_capacity_is_accepted() -> None:
    assert BloomFilter(capacity=1e3).capacity == 1000


@pytest.mark.parametrize("capacity", [0, -1, -1_000_000])
def test_capacity_below_one_is_a_value_error_naming_it(capacity: int) -> None:
    with pytest.raises(ValueError, match=r"capacity must be 1 or more") as info:
        BloomFilter(capacity=capacity, error_rate=0.01)
    assert repr(capacity) in str(info.value)


@pytest.mark.parametrize("capacity", [1.5, float("nan"), float("inf")])
def test_capacity_that_is_not_whole_is_a_value_error(capacity: float) -> None:
    with pytest.raises(ValueError, match=r"capacity must be a whole number of items, 1 or more"):
        BloomFilter(capacity=capacity)


@pytest.mark.parametrize("capacity", ["1000", None, True, [10]])
def test_capacity_of_another_type_is_a_type_error(capacity: Any) -> None:
    with pytest.raises(TypeError, match=r"capacity must be a whole number"):
        BloomFilter(capacity=capacity)


@pytest.mark.parametrize("error_rate", [0, 0.0, 1, 1.0, -0.01, 1.5, float("nan"), float("inf")])
def test_error_rate_outside_0_1_is_a_value_error_naming_the_range(error_rate: float) -> None:
    with pytest.raises(ValueError, match=r"error_rate must be between 0 and 1, exclusive") as info:
        BloomFilter(capacity=100, error_rate=error_rate)
    assert "0 < error_rate < 1" in str(info.value)


@pytest.mark.parametrize("error_rate", ["0.01", None, True])
def test_error_rate_of_another_type_is_a_type_error(error_rate: Any) -> None:
    with pytest.raises(TypeError, match=r"error_rate must be a number between 0 and 1"):
        BloomFilter(capacity=100, error_rate=error_rate)


@pytest.mark.parametrize(
    ("key", "error", "match"),
    [
        (b"short", ValueError, r"16 to 32 bytes long .* got 5 bytes"),
        (bytes(33), ValueError, r"got 33 bytes"),
        ("a text key of 16+ chars", TypeError, r"key must be bytes"),
        (12345, TypeError, r"key must be bytes"),
    ],
)
def test_bad_hash_key_is_refused(key: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        BloomFilter(capacity=100, key=key)


def test_hash_key_may_be_bytes_like() -> None:
    key = bytearray(range(20))
    assert BloomFilter(capacity=100, key=key).hash_key == bytes(key)


def test_unknown_storage_is_refused() -> None:
    with pytest.raises(ValueError, match=r"storage must be 'auto', 'bitarray' or 'bytearray'"):
        BloomFilter(capacity=100, storage="numpy")  # type: ignore[arg-type]
