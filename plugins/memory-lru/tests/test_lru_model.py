"""Model-based tests: ``LRUCache`` behaves like a reference LRU built on an OrderedDict.

After every step the set of stored keys must equal the model's, so any difference in
eviction order (which key goes when the store is full) fails the run.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from cachemesh import MISSING
from cachemesh_memory_lru import LRUCache
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

KEYS = range(8)
keys = st.sampled_from(KEYS)
values = st.one_of(st.integers(), st.none(), st.text(max_size=3))


class LRUModel(RuleBasedStateMachine):
    """Reference: an OrderedDict whose first item is the least recently used one."""

    cache: LRUCache
    model: OrderedDict[int, Any]
    max_size: int

    @initialize(max_size=st.integers(min_value=1, max_value=5))
    def build(self, max_size: int) -> None:
        self.max_size = max_size
        self.cache = LRUCache(max_size=max_size)
        self.model = OrderedDict()

    @rule(key=keys, value=values)
    def set(self, key: int, value: Any) -> None:
        self.cache.set(key, value)
        if key in self.model:
            self.model.move_to_end(key)
        elif len(self.model) >= self.max_size:
            self.model.popitem(last=False)
        self.model[key] = value

    @rule(key=keys)
    def get(self, key: int) -> None:
        got = self.cache.get(key, MISSING)
        if key in self.model:
            self.model.move_to_end(key)  # a hit makes the entry the most recent
            assert got == self.model[key], "a hit returned a value that was not the last set"
        else:
            assert got is MISSING, f"{key} should have been evicted or deleted, got {got!r}"

    @rule(key=keys)
    def delete(self, key: int) -> None:
        existed = self.model.pop(key, MISSING) is not MISSING
        assert self.cache.delete(key) is existed

    @rule(key=keys)
    def pop(self, key: int) -> None:
        assert self.cache.pop(key, MISSING) == self.model.pop(key, MISSING)

    @rule(key=keys)
    def contains_does_not_refresh(self, key: int) -> None:
        assert (key in self.cache) is (key in self.model)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model.clear()

    @invariant()
    def size_is_bounded_and_matches_the_model(self) -> None:
        assert len(self.cache) <= self.max_size
        assert len(self.cache) == len(self.model)

    @invariant()
    def same_keys_as_the_model(self) -> None:
        stored = {k for k in KEYS if k in self.cache}
        assert stored == set(self.model), (
            f"eviction differs: store {stored}, model {set(self.model)}"
        )


LRUModel.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, database=None
)
TestLRUModel = LRUModel.TestCase
