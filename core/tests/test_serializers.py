"""Serializers: JSON by default, msgpack, signed pickle; corrupt entries read as misses."""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, CacheConfig, ConfigError, SerializationError, SyncCache
from cachemesh.builtins.serializers import (
    JsonSerializer,
    MsgpackSerializer,
    SignedPickleSerializer,
)
from cachemesh.serializers import CorruptEntry

MakeConfig = Callable[..., CacheConfig]
KEY = b"0123456789abcdef-signing"
HAS_MSGPACK = importlib.util.find_spec("msgpack") is not None


def msgpack_or_skip() -> Any:
    """The msgpack serializer; the core alone (no msgpack extra) skips its cases."""
    if not HAS_MSGPACK:
        return pytest.param(None, marks=pytest.mark.skip(reason="msgpack not installed"))
    return MsgpackSerializer()


@pytest.mark.parametrize(
    "serializer", [JsonSerializer(), msgpack_or_skip(), SignedPickleSerializer(signing_key=KEY)]
)
@pytest.mark.parametrize("value", [None, 0, 1.5, "ü", [1, "a"], {"a": {"b": [None]}}, True])
def test_round_trip(serializer: Any, value: Any) -> None:
    assert serializer.loads(serializer.dumps(value)) == value


@pytest.mark.parametrize("serializer", [JsonSerializer(), msgpack_or_skip()])
def test_unserializable_value_names_the_type_and_the_fix(serializer: Any) -> None:
    with pytest.raises(SerializationError, match=r"cannot encode a object.*CACHE_SIGNING_KEY"):
        serializer.dumps(object())


@pytest.mark.parametrize("serializer", [JsonSerializer(), msgpack_or_skip()])
def test_garbage_is_a_corrupt_entry(serializer: Any) -> None:
    with pytest.raises(CorruptEntry):
        serializer.loads(b"\xc1\xff{not valid")


def test_pickle_is_refused_without_a_signing_key(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError, match="CACHE_SIGNING_KEY"):
        SyncCache(make_config(CACHE_SERIALIZER="pickle"))
    with pytest.raises(ConfigError, match="at least 16"):
        SignedPickleSerializer(signing_key=b"short")


class Exploit:
    ran = False

    def __reduce__(self) -> Any:
        return (setattr, (Exploit, "ran", True))


def test_tampered_pickle_is_never_loaded() -> None:
    serializer = SignedPickleSerializer(signing_key=KEY)
    unsigned = b"\x00" * 32 + pickle.dumps(Exploit())
    with pytest.raises(CorruptEntry, match="signature"):
        serializer.loads(unsigned)
    other_key = SignedPickleSerializer(signing_key=b"another-key-of-16+").dumps({"a": 1})
    with pytest.raises(CorruptEntry):
        serializer.loads(other_key)
    assert Exploit.ran is False


def test_corrupt_entry_reads_as_a_miss_and_is_counted(make_config: MakeConfig) -> None:
    cache = SyncCache(make_config(CACHE_BACKEND_OPTIONS={"serialize": True}))
    cache.set("good", {"a": 1})
    cache.backend.set(cache.keys.key("bad"), b"\xff not json", 60)
    assert cache.get("bad", MISSING) is MISSING
    assert cache.get_many(["good", "bad"]) == [{"a": 1}, None]
    assert cache.corrupt_entries == 2
    assert cache.backend.get(cache.keys.key("bad")) == b"\xff not json"  # not deleted


def test_signed_pickle_cache_stores_what_json_cannot(make_config: MakeConfig) -> None:
    config = make_config(
        CACHE_SERIALIZER="pickle",
        CACHE_SIGNING_KEY=KEY.decode(),
        CACHE_BACKEND_OPTIONS={"serialize": True},
    )
    cache = SyncCache(config)
    cache.set("k", {1, 2, 3})
    assert cache.get("k") == {1, 2, 3}
    assert KEY.decode() not in repr(config)


def test_value_size_limit_refuses_before_storing(make_config: MakeConfig) -> None:
    from cachemesh import ValueTooLargeError

    cache = SyncCache(
        make_config(CACHE_MAX_VALUE_BYTES=100, CACHE_BACKEND_OPTIONS={"serialize": True})
    )
    cache.set("k", "small")
    with pytest.raises(ValueTooLargeError, match="CACHE_MAX_VALUE_BYTES=100"):
        cache.set("k", "x" * 200)
    assert cache.get("k") == "small"


def test_memory_backend_keeps_live_objects_by_default(make_config: MakeConfig) -> None:
    cache = SyncCache(make_config())
    value = {"items": [1]}
    cache.set("k", value)
    value["items"].append(2)  # documented: like functools.lru_cache, no copy is made
    assert cache.get("k") == {"items": [1, 2]}
