"""The key layer: layout, hashing, glob escaping and the SPEC §10 key shapes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cachemesh import CacheKeyBuilder, InvalidKeyError, KeyBuilder, escape_glob, stable_digest
from cachemesh.keys import glob_to_regex
from hypothesis import given
from hypothesis import strategies as st


def test_layout_with_and_without_namespace() -> None:
    assert KeyBuilder("myapp", 1).key("user:1") == "myapp:v1:user:1"
    assert KeyBuilder("myapp", 3, "users").key("1") == "myapp:users:v3:1"
    assert KeyBuilder("myapp", 1).key(42) == "myapp:v1:42"  # type: ignore[arg-type]


def test_patterns_escape_our_part_and_keep_the_users() -> None:
    kb = KeyBuilder("my.app", 1, "ns")
    assert kb.pattern("user:*") == "my.app:ns:v1:user:*"
    assert kb.pattern(escape_glob("a*b") + ":*") == r"my.app:ns:v1:a\*b:*"
    with pytest.raises(InvalidKeyError, match="pattern"):
        kb.pattern("")


@pytest.mark.parametrize("prefix", ["", "a*b", "x?", None])
def test_bad_prefix_is_refused(prefix: str | None) -> None:
    with pytest.raises(InvalidKeyError, match="CACHE_KEY_PREFIX"):
        KeyBuilder(prefix, 1)  # type: ignore[arg-type]


def test_namespace_that_looks_like_a_version_is_refused() -> None:
    with pytest.raises(InvalidKeyError, match="version tag"):
        KeyBuilder("app", 1, "v2")


@pytest.mark.parametrize("key", [None, 1.5, b"bytes", ("t",), True])
def test_non_string_keys_are_refused(key: object) -> None:
    with pytest.raises(InvalidKeyError, match="keys must be str"):
        KeyBuilder("app", 1).key(key)  # type: ignore[arg-type]


def test_long_keys_hash_deterministically_within_the_limit() -> None:
    kb = KeyBuilder("app", 1, max_length=64)
    long_key = "x" * 500
    hashed = kb.key(long_key)
    assert len(hashed) <= 64 + 8 and hashed.startswith("app:v1:#")
    assert kb.key(long_key) == hashed
    assert kb.key(long_key + "y") != hashed
    assert kb.key("short") == "app:v1:short"


def test_stable_digest_is_the_same_in_another_process() -> None:
    value = {"b": [1, 2, {"z": None}], "a": ("x", 1.5), "s": {3, 1, 2}}
    code = (
        "from cachemesh import stable_digest; "
        "print(stable_digest({'b': [1, 2, {'z': None}], 'a': ('x', 1.5), 's': {3, 1, 2}}))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123"},
    ).stdout.strip()
    assert other == stable_digest(value)


def test_stable_digest_ignores_mapping_order_but_not_types() -> None:
    assert stable_digest({"a": 1, "b": 2}) == stable_digest({"b": 2, "a": 1})
    assert stable_digest(1) != stable_digest("1")
    assert stable_digest([1, 2]) != stable_digest([2, 1])


@given(st.text(max_size=30))
def test_escaped_text_matches_only_itself(text: str) -> None:
    regex = glob_to_regex(escape_glob(text))
    assert regex.match(text)
    assert not regex.match(text + "x")


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("user:*", ["user:", "user:1", "user:1:2"], ["users", "xuser:1"]),
        ("a?c", ["abc", "a*c"], ["ac", "abbc"]),
        ("[ab]x", ["ax", "bx"], ["cx"]),
        ("[^a]x", ["bx"], ["ax"]),
        (r"a\*", ["a*"], ["ab"]),
    ],
)
def test_glob_semantics_match_redis(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = glob_to_regex(pattern)
    assert all(regex.match(m) for m in matches)
    assert not any(regex.match(m) for m in misses)


def test_spec_key_shapes() -> None:
    assert CacheKeyBuilder.user_profile(123) == "user:profile:123"
    assert CacheKeyBuilder.user_permissions(123) == "user:permissions:123"
    assert CacheKeyBuilder.session("abc") == "session:abc"
    one = CacheKeyBuilder.api_response("/users", {"page": 1, "size": 20})
    two = CacheKeyBuilder.api_response("/users", {"size": 20, "page": 1})
    assert one == two and one.startswith("api:/users:")
    assert one != CacheKeyBuilder.api_response("/users", {"page": 2, "size": 20})
    assert CacheKeyBuilder.build("order", 7, "items") == "order:7:items"
    with pytest.raises(InvalidKeyError):
        CacheKeyBuilder.build()


def test_batch_keys_match_single_keys_beyond_the_remembered_limit() -> None:
    kb = KeyBuilder("app", 3, "ns", max_length=40)
    batch = [f"k{i}" for i in range(KeyBuilder.REMEMBERED + 50)] + ["x" * 100, 7]
    assert kb.keys(batch) == [kb.key(k) for k in batch]  # type: ignore[arg-type]
    assert kb.keys(batch) == [kb.key(k) for k in batch]  # second pass: remembered ones
    assert len(kb._built) <= KeyBuilder.REMEMBERED
    with pytest.raises(InvalidKeyError, match="keys must be str"):
        kb.keys(["ok", ["unhashable"]])  # type: ignore[list-item]
