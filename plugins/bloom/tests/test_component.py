"""The plugin registers through its entry point: ``from cachemesh import BloomFilter`` is this
plugin's filter, and the registry resolves the message filter ``bloom``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import cachemesh
import cachemesh_bloom
import pytest
from cachemesh import ComponentRegistry, get_registry, new_plugin_manager
from cachemesh.messaging import MessageFilter, SyncMessageQueue
from cachemesh_bloom import BloomFilterOptions, BloomMessageFilter


def test_the_core_exports_this_plugins_filter() -> None:
    assert cachemesh.BloomFilter is cachemesh_bloom.BloomFilter
    bloom = cachemesh.BloomFilter(capacity=1_000_000, error_rate=0.1)  # SPEC section 10
    bloom.add("user:1")
    assert bloom.might_contain("user:1")


def test_the_entry_point_registers_the_bloom_filter_component() -> None:
    pm = new_plugin_manager(load_entrypoints=True)
    registry = get_registry(pm)
    assert registry.resolve("filter", "bloom") is BloomMessageFilter
    assert registry.provider("filter", "bloom") == "cachemesh-bloom"


def test_the_module_alone_registers_it_too() -> None:
    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(cachemesh_bloom, name="cachemesh-bloom")
    assert ComponentRegistry.from_plugin_manager(pm).names("filter") == ["bloom"]


@dataclass
class Event:
    id: str | None
    kind: str = "login"


def test_filter_lets_through_known_keys_only() -> None:
    known = BloomMessageFilter(capacity=1_000, error_rate=0.001)
    known.add("user:1")
    known.add_many(["user:2", 3])
    assert isinstance(known, MessageFilter) and known.kind == "filter"
    assert known.filter({"id": "user:1"})
    assert known.filter(Event("user:2"))
    assert known.filter({"id": 3}), "ints are looked up as str()"
    assert not known.filter({"id": "user:999"})
    assert not known.filter({"kind": "no id"}), "no field: dropped"
    assert not known.filter(Event(None))
    assert "key_field='id'" in repr(known)


def test_explain_says_why() -> None:
    known = BloomMessageFilter(capacity=1_000, error_rate=0.001, key_field="user")
    known.add("ann")
    assert known.explain({"user": "ann"}).endswith("passes: user='ann' may be a known key")
    assert "drops the message: user='bob' is not a known key" in known.explain({"user": "bob"})
    assert "drops the message: it has no 'user'" in known.explain({})


def test_a_message_queue_drops_what_the_filter_drops() -> None:
    known = BloomMessageFilter(capacity=1_000, error_rate=0.001, key_field="user_id")
    known.add_many([1, 2])
    queue = SyncMessageQueue("memory://", f"bloom-{uuid.uuid4().hex[:8]}", filters=[known])
    assert queue.route("user.login", {"user_id": 1}) is not None
    assert queue.route("user.login", {"user_id": 404}) is None
    assert "dropped: not sent" in queue.explain("user.login", {"user_id": 404})


def test_options_from_a_dict_a_model_or_keywords() -> None:
    by_dict = BloomMessageFilter({"capacity": 10, "key_field": "id"})
    by_model = BloomMessageFilter(BloomFilterOptions(capacity=10, key_field="id"))
    for f in (by_dict, by_model, BloomMessageFilter(capacity=10, key_field="id")):
        assert (f.bloom.capacity, f.options.key_field) == (10, "id")
    by_dict.add("x")
    assert by_dict.filter({"id": "x"})


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"capacity": 0}, "capacity"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"key_field": ""}, "key_field"),
        ({"size": 10}, "size"),
    ],
)
def test_bad_options_are_refused_naming_them(options: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        BloomMessageFilter(options)


def test_positional_options_are_refused_with_the_keywords_to_use() -> None:
    with pytest.raises(TypeError, match=r"by keyword, e.g. BloomMessageFilter\(capacity="):
        BloomMessageFilter(1000)  # type: ignore[arg-type]
