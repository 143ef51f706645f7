"""The hash that places keys on bits: SipHash-2-4 as published, the documented recipe for the
positions (checked against a pure-Python SipHash written from the paper, not the C package),
and the point of a secret key: positions crafted with one key mean nothing under another."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cachemesh_bloom import BloomFilter, batch
from cachemesh_bloom.hashing import (
    SCHEME_BLAKE2S,
    SCHEME_SIPHASH,
    key_hash,
    siphash24,
    step_span,
)
from hypothesis import given, settings
from hypothesis import strategies as st

MASK = (1 << 64) - 1


def _rotl(x: int, bits: int) -> int:
    return ((x << bits) | (x >> (64 - bits))) & MASK


def reference_siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 straight from Aumasson and Bernstein's paper (2012), in plain Python."""
    k0, k1 = struct.unpack("<QQ", key)
    v: list[int] = [k0 ^ 0x736F6D6570736575, k1 ^ 0x646F72616E646F6D]
    v += [k0 ^ 0x6C7967656E657261, k1 ^ 0x7465646279746573]

    def sip_rounds(n: int) -> None:
        for _ in range(n):
            v[0] = (v[0] + v[1]) & MASK
            v[1] = _rotl(v[1], 13) ^ v[0]
            v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & MASK
            v[3] = _rotl(v[3], 16) ^ v[2]
            v[0] = (v[0] + v[3]) & MASK
            v[3] = _rotl(v[3], 21) ^ v[0]
            v[2] = (v[2] + v[1]) & MASK
            v[1] = _rotl(v[1], 17) ^ v[2]
            v[2] = _rotl(v[2], 32)

    whole = len(data) - len(data) % 8
    words = [int.from_bytes(data[i : i + 8], "little") for i in range(0, whole, 8)]
    words.append((len(data) & 0xFF) << 56 | int.from_bytes(data[whole:], "little"))
    for word in words:
        v[3] ^= word
        sip_rounds(2)
        v[0] ^= word
    v[2] ^= 0xFF
    sip_rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def reference_probes(hash_key: bytes, key: str | bytes, m: int, k: int) -> list[int]:
    """Scheme 2 as docs/plugins/bloom.md and hashing.py describe it, from scratch."""
    sip_key = hashlib.blake2s(b"cachemesh-bloom siphash-2-4 key", key=hash_key, digest_size=16)
    data = key.encode() if isinstance(key, str) else key
    x = reference_siphash24(sip_key.digest(), data)
    a, b = x % m, (x // m) % max(1, (m - 1) // max(k - 1, 1)) + 1
    return [(a + i * b) % m for i in range(k)]


# --- SipHash itself ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("length", "expected"),
    [(0, 0x726FDB47DD0E0E31), (1, 0x74F839C593DC67FD), (15, 0xA129CA6149BE45E5)],
)
def test_siphash_gives_the_published_test_vectors(length: int, expected: int) -> None:
    """Key 00..0f, message 00..(length-1): the vectors of the SipHash reference code."""
    key, data = bytes(range(16)), bytes(range(length))
    assert siphash24(key, data) == expected
    assert reference_siphash24(key, data) == expected


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), data=st.binary(max_size=70))
def test_the_c_siphash_agrees_with_the_reference(key: bytes, data: bytes) -> None:
    assert siphash24(key, data) == reference_siphash24(key, data)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=30))
def test_text_is_hashed_as_its_utf8_bytes(text: str) -> None:
    key = bytes(range(16))
    assert siphash24(key, text) == siphash24(key, text.encode())


def test_text_that_is_not_utf8_encodable_is_refused_like_str_encode() -> None:
    bloom = BloomFilter(capacity=100)
    with pytest.raises(UnicodeEncodeError):
        bloom.add("lone surrogate \ud800")


# --- positions --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    hash_key=st.binary(min_size=16, max_size=32),
    keys=st.lists(st.one_of(st.text(max_size=20), st.binary(max_size=20)), max_size=20),
    capacity=st.integers(1, 3_000),
    error_rate=st.sampled_from([0.5, 0.1, 0.01, 1e-5]),
)
def test_positions_follow_the_documented_recipe(
    hash_key: bytes, keys: list[str | bytes], capacity: int, error_rate: float
) -> None:
    bloom = BloomFilter(capacity, error_rate, key=hash_key)
    m, k = bloom.num_bits, bloom.num_hashes
    for key in keys:
        assert bloom.probe_indexes(key) == reference_probes(hash_key, key, m, k)


def test_every_byte_of_a_long_hash_key_matters() -> None:
    key = bytes(range(32))
    changed = key[:31] + b"\xff"
    a, b = BloomFilter(10_000, key=key), BloomFilter(10_000, key=changed)
    keys = [f"user:{i}" for i in range(50)]
    assert sum(a.probe_indexes(k) == b.probe_indexes(k) for k in keys) == 0


def test_keys_crafted_against_one_hash_key_spread_out_under_another() -> None:
    """The attack a secret prevents: whoever knows the hash key can find many keys that all
    set the same k bits (here by brute force on a tiny filter) and so fill a filter with
    keys that make it answer "maybe" for the victim's key. Without the key, the same crafted
    keys land on bits as any others do."""
    known = BloomFilter(capacity=10, error_rate=0.1, key=bytes(16))  # m = 48, k = 3
    target = sorted(known.probe_indexes("victim"))
    crafted = [
        c for c in (f"c{i}" for i in range(120_000)) if sorted(known.probe_indexes(c)) == target
    ]
    assert len(crafted) >= 30, "the brute force found colliding keys"
    known.add_many(crafted)
    assert known.bits_set() == known.num_hashes and "victim" in known
    secret = BloomFilter(capacity=10, error_rate=0.1)  # a random key, as by default
    secret.add_many(crafted)
    assert secret.bits_set() > 30, "spread over the filter like any 30+ keys"


# --- the KeyHash object -----------------------------------------------------------------------
def test_a_key_hash_never_shows_its_key() -> None:
    hash_key = bytes(range(16, 32))
    for scheme in (SCHEME_SIPHASH, SCHEME_BLAKE2S):
        hasher = key_hash(scheme, hash_key, 1_000, 7)
        assert hash_key.hex() not in repr(hasher) and repr(hash_key) not in repr(hasher)
        assert "siphash" in repr(hasher) or "blake2s" in repr(hasher)


def test_an_unknown_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"unknown hash scheme 7"):
        key_hash(7, bytes(16), 1_000, 7)


def test_blake2s_values_stay_below_their_bound_and_batch_only_when_they_fit_uint64() -> None:
    hasher = key_hash(SCHEME_BLAKE2S, bytes(16), 1_000, 7)
    assert all(hasher(f"k{i}") < hasher.bound for i in range(1_000))
    assert hasher(b"k1") // 1_000 < step_span(1_000, 7)
    assert batch.fits(hasher) and batch.fits(key_hash(SCHEME_SIPHASH, bytes(16), 2**40, 7))
    assert not batch.fits(key_hash(SCHEME_BLAKE2S, bytes(16), 2**34, 7)), "per key instead"
