"""The ``priority`` and ``user-type`` filters: what passes, what a missing field means,
what ``explain`` says, and options refused up front."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest
from cachemesh import ConfigError
from cachemesh.messaging import Message
from cachemesh_notification_router import (
    PriorityFilter,
    PriorityFilterOptions,
    UserTypeFilter,
    UserTypeFilterOptions,
)


# --- priority ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "passes"),
    [
        ({"priority": "high"}, True),
        ({"priority": "urgent"}, True),
        ({"priority": "normal"}, False),
        ({"priority": "low"}, False),
        ({"priority": "HIGH"}, False),  # exact, case-sensitive
        ({"priority": 9}, False),
        ({"priority": ["high"]}, False),  # unhashable: never an allowed name
        ({}, False),  # missing means normal
        ({"priority": None}, False),  # null means missing
        ({"to": "a@example.com"}, False),
    ],
)
def test_priority_filter_passes_only_high_and_urgent(message: dict[str, Any], passes: bool) -> None:
    assert PriorityFilter().filter(message) is passes


def test_priority_defaults_are_the_guide_s() -> None:
    f = PriorityFilter()
    assert (f.allowed, f.field, f.default) == (("high", "urgent"), "priority", "normal")
    assert list(PriorityFilterOptions.model_fields) == ["allowed", "field", "default"]


def test_a_missing_priority_passes_when_normal_is_allowed() -> None:
    f = PriorityFilter(allowed=["normal", "high"])
    assert f.filter({})
    assert f.filter({"priority": None})
    assert not f.filter({"priority": "low"})


def test_the_default_for_a_missing_field_is_an_option() -> None:
    f = PriorityFilter(default="high")
    assert f.filter({})
    assert not f.filter({"priority": "low"})


def test_another_field_can_hold_the_priority() -> None:
    f = PriorityFilter(field="level")
    assert f.filter({"level": "urgent", "priority": "low"})
    assert not f.filter({"priority": "urgent"})


@dataclass
class Notification:
    to: str
    priority: str


@pytest.mark.parametrize(
    "message",
    [
        MappingProxyType({"priority": "urgent"}),
        SimpleNamespace(priority="urgent"),
        Notification("a@example.com", "urgent"),
    ],
)
def test_mappings_and_objects_with_attributes_are_read(message: Any) -> None:
    assert PriorityFilter().filter(message)


def test_an_object_without_the_attribute_counts_as_missing() -> None:
    f = PriorityFilter()
    assert not f.filter(SimpleNamespace(to="x"))
    assert f.value_of(SimpleNamespace(to="x")) == ("normal", True)
    assert f.value_of(None) == ("normal", True)


def test_a_delivered_message_is_read_by_its_body_not_its_envelope() -> None:
    # The envelope's own `priority` is an int 0-9; the guide filters on the body's.
    delivered = Message(
        body={"priority": "urgent"}, routing_key="user.email", queue="q", id="1", priority=0
    )
    assert PriorityFilter().filter(delivered)
    low = Message(body={"priority": "low"}, routing_key="k", queue="q", id="2", priority=9)
    assert not PriorityFilter().filter(low)


def test_priority_explain() -> None:
    f = PriorityFilter()
    assert f.explain({"priority": "high"}) == (
        "PriorityFilter passes the message: priority 'high' is in ['high', 'urgent']"
    )
    assert f.explain({"priority": "low"}) == (
        "PriorityFilter drops the message: priority 'low' is not in ['high', 'urgent']"
    )
    assert f.explain({}) == (
        "PriorityFilter drops the message: priority missing → 'normal', which is not in "
        "['high', 'urgent']"
    )
    assert PriorityFilter(allowed=["normal"]).explain({"priority": None}) == (
        "PriorityFilter passes the message: priority missing → 'normal', which is in ['normal']"
    )


def test_explain_agrees_with_filter() -> None:
    f = PriorityFilter()
    for message in ({"priority": "high"}, {"priority": "low"}, {}, {"priority": [1]}):
        verdict = "passes" if f.filter(message) else "drops"
        assert f.explain(message).startswith(f"PriorityFilter {verdict} the message")


# --- user type --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "passes"),
    [
        ({"user_type": "premium"}, True),
        ({"user_type": "vip"}, True),
        ({"user_type": "regular"}, False),
        ({"user_type": "guest"}, False),
        ({}, False),  # missing means regular
        ({"user_type": None}, False),
    ],
)
def test_user_type_filter(message: dict[str, Any], passes: bool) -> None:
    assert UserTypeFilter(allowed=["premium", "vip"]).filter(message) is passes


def test_a_missing_user_type_is_regular() -> None:
    f = UserTypeFilter(allowed=["regular"])
    assert (f.field, f.default) == ("user_type", "regular")
    assert f.filter({})
    assert f.explain({}) == (
        "UserTypeFilter passes the message: user_type missing → 'regular', which is in ['regular']"
    )


def test_user_type_explain() -> None:
    f = UserTypeFilter(allowed=["premium"])
    assert f.explain({"user_type": "guest"}) == (
        "UserTypeFilter drops the message: user_type 'guest' is not in ['premium']"
    )


def test_user_type_options_as_keywords_mapping_or_model_agree() -> None:
    expected = UserTypeFilter(allowed=["vip"], field="tier").options
    assert UserTypeFilter({"allowed": ["vip"], "field": "tier"}).options == expected
    assert UserTypeFilter(UserTypeFilterOptions(allowed=["vip"], field="tier")).options == expected
    assert UserTypeFilter({"allowed": ["vip"]}, field="tier").options == expected
    assert UserTypeFilter(allowed=("vip",), field="tier").options == expected


def test_repr_shows_the_options() -> None:
    assert repr(UserTypeFilter(allowed=["vip"])) == (
        "UserTypeFilter(allowed=['vip'], field='user_type', default='regular')"
    )


# --- bad options ------------------------------------------------------------------------------
def test_user_type_allowed_is_required() -> None:
    with pytest.raises(ConfigError) as info:
        UserTypeFilter()
    assert str(info.value) == (
        "Invalid options for the filter 'user-type' (UserTypeFilter): allowed: Field required. "
        "Allowed options: allowed (list[str]), field (str), default (str)."
    )


@pytest.mark.parametrize(
    ("cls", "options", "expected"),
    [
        (UserTypeFilter, {"allowed": []}, "allowed = []: List should have at least 1 item"),
        (PriorityFilter, {"allowed": []}, "allowed = []: List should have at least 1 item"),
        (
            UserTypeFilter,
            {"allowed": "premium"},
            """allowed = 'premium': allowed must be a list of strings, e.g. ["premium"]""",
        ),
        (PriorityFilter, {"allowed": ["high", ""]}, "every allowed value must be a non-empty"),
        (
            PriorityFilter,
            {"allowed": ["high", 1]},
            "allowed[1] = 1: Input should be a valid string",
        ),
        (PriorityFilter, {"field": ""}, "field = '': field must be a non-empty string"),
        (PriorityFilter, {"default": " "}, "default = ' ': default must be a non-empty string"),
        (PriorityFilter, {"default": None}, "default = None: Input should be a valid string"),
        (PriorityFilter, {"allow": ["high"]}, "allow = ['high']: Extra inputs are not permitted"),
    ],
)
def test_bad_options_fail_at_construction_naming_them(
    cls: type[Any], options: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        cls(options)
    assert f"Invalid options for the filter {cls.name!r} ({cls.__name__}): " in str(info.value)
    assert expected in str(info.value)


def test_positional_options_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(TypeError, match=r"UserTypeFilter\(allowed=\.\.\., field='user_type'"):
        UserTypeFilter(["premium"])
