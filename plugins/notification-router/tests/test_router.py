"""The ``notification`` router: the guide's table, patterns, precedence, explanations."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
from cachemesh import ConfigError
from cachemesh_notification_router import (
    SEED_ROUTES,
    NotificationRouter,
    NotificationRouterOptions,
)
from cachemesh_notification_router.router import is_pattern

# SPEC §9, word for word.
SPEC_TABLE = [
    ("user.email", "email_queue"),
    ("user.sms", "sms_queue"),
    ("user.push", "push_queue"),
    ("admin.alert", "admin_queue"),
]


@pytest.mark.parametrize(("routing_key", "queue"), SPEC_TABLE)
def test_the_guide_table_is_the_default(routing_key: str, queue: str) -> None:
    router = NotificationRouter()
    assert router.route_message(routing_key, {"to": "a@example.com"}) == queue


@pytest.mark.parametrize("routing_key", ["order.created", "user", "user.email.v2", "USER.EMAIL"])
def test_anything_else_goes_to_default_queue(routing_key: str) -> None:
    assert NotificationRouter().route_message(routing_key, {}) == "default_queue"


def test_defaults_are_documented_values() -> None:
    router = NotificationRouter()
    assert dict(router.routes) == dict(SPEC_TABLE) == dict(SEED_ROUTES)
    assert router.default_queue == "default_queue"
    assert router.dead_letter_queue == "unroutable"
    assert router.patterns == ()
    assert list(NotificationRouterOptions.model_fields) == [
        "routes",
        "default_queue",
        "dead_letter_queue",
    ]


def test_the_message_does_not_change_the_route() -> None:
    router = NotificationRouter()
    for message in ({}, {"priority": "high"}, None, object()):
        assert router.route_message("user.sms", message) == "sms_queue"


def test_given_routes_replace_the_guide_table() -> None:
    router = NotificationRouter(routes={"order.created": "orders"})
    assert router.route_message("order.created", {}) == "orders"
    assert router.route_message("user.email", {}) == "default_queue"


# --- patterns -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("routing_key", "queue"),
    [
        ("user.login", "user_queue"),
        ("user.profile.updated", "user_queue"),  # `*` crosses dots, as in fnmatch
        ("admin.alert", "admin_queue"),
        ("admin.b", "admin_one_char"),
        ("admin.bb", "default_queue"),
        ("report.1", "reports"),
        ("report.x", "default_queue"),
        ("report.12", "default_queue"),
        ("billing.invoice", "not_user"),
        ("user", "default_queue"),
    ],
)
def test_glob_patterns(routing_key: str, queue: str) -> None:
    router = NotificationRouter(
        routes={
            "user.*": "user_queue",
            "admin.?": "admin_one_char",
            "admin.alert": "admin_queue",
            "report.[0-9]": "reports",
            "[!u]*.invoice": "not_user",
        }
    )
    assert router.route_message(routing_key, {}) == queue


def test_matching_is_case_sensitive() -> None:
    router = NotificationRouter(routes={"user.*": "users"})
    assert router.route_message("User.email", {}) == "default_queue"


def test_an_exact_key_beats_any_pattern_whatever_the_order() -> None:
    declared_first = NotificationRouter(routes={"user.*": "users", "user.email": "email_queue"})
    declared_last = NotificationRouter(routes={"user.email": "email_queue", "user.*": "users"})
    for router in (declared_first, declared_last):
        assert router.route_message("user.email", {}) == "email_queue"
        assert router.route_message("user.sms", {}) == "users"


@pytest.mark.parametrize(
    ("routes", "routing_key", "winner"),
    [
        # 1. more literal characters
        ({"*": "any", "user.*": "user", "user.*.urgent": "urgent"}, "user.sms.urgent", "urgent"),
        ({"user.*.urgent": "urgent", "user.*": "user", "*": "any"}, "user.sms.urgent", "urgent"),
        ({"user.*": "prefix", "*.email": "suffix"}, "user.email", "suffix"),
        # 2. then fewer `*`
        ({"user.**": "two", "user.*": "one"}, "user.x", "one"),
        ({"a*b*": "two_stars", "a?b*": "one_star"}, "axb", "one_star"),
        # 3. then more one-character wildcards
        ({"*": "star", "[ab]*": "class"}, "a", "class"),
        ({"user.*": "star", "user.?*": "question"}, "user.x", "question"),
        # 4. then a longer literal prefix
        ({"*mail": "late", "user*": "early"}, "user.email", "early"),
        # 5. then the one declared first
        ({"user.?": "first", "user.[a-z]": "second"}, "user.x", "first"),
        ({"user.[a-z]": "first", "user.?": "second"}, "user.x", "first"),
    ],
)
def test_the_most_specific_pattern_wins(
    routes: dict[str, str], routing_key: str, winner: str
) -> None:
    assert NotificationRouter(routes=routes).route_message(routing_key, {}) == winner


def test_patterns_are_listed_in_the_order_they_are_tried() -> None:
    router = NotificationRouter(routes={"*": "a", "user.*": "b", "user.*.urgent": "c", "x": "d"})
    assert router.patterns == ("user.*.urgent", "user.*", "*")


@pytest.mark.parametrize("key", ["user.email", "a[1", "a]b", "plain-key_1"])
def test_keys_without_a_wildcard_are_exact(key: str) -> None:
    assert not is_pattern(key)
    # fnmatch agrees: the key matches itself and nothing longer or different.
    assert fnmatch.fnmatchcase(key, key)
    assert not fnmatch.fnmatchcase(key + "x", key)
    assert NotificationRouter(routes={key: "q"}).route_message(key, {}) == "q"


@pytest.mark.parametrize("key", ["a*", "a?", "a[bc]", "[!x]", "a[]]"])
def test_keys_with_a_wildcard_are_patterns(key: str) -> None:
    assert is_pattern(key)


# --- unroutable -----------------------------------------------------------------------------
def test_unroutable_goes_to_the_dead_letter_queue_when_there_is_no_default() -> None:
    router = NotificationRouter(default_queue=None)
    assert router.route_message("order.created", {}) == "unroutable"
    assert router.route_message("user.email", {}) == "email_queue"
    custom = NotificationRouter(default_queue=None, dead_letter_queue="nowhere")
    assert custom.route_message("order.created", {}) == "nowhere"


def test_dead_letter_queue_is_unused_while_there_is_a_default() -> None:
    router = NotificationRouter(dead_letter_queue="nowhere")
    assert router.route_message("order.created", {}) == "default_queue"


@pytest.mark.parametrize("routing_key", ["", None, 3])
def test_a_routing_key_must_be_a_non_empty_string(routing_key: Any) -> None:
    with pytest.raises(ValueError, match="routing_key"):
        NotificationRouter().route_message(routing_key, {})


# --- explain ----------------------------------------------------------------------------------
def test_explain_an_exact_route() -> None:
    text = NotificationRouter().explain("user.email", {})
    assert (
        text == "NotificationRouter routed 'user.email' to 'email_queue': exact route 'user.email'."
    )


def test_explain_a_pattern_names_it_and_the_ones_it_beat() -> None:
    router = NotificationRouter(routes={"*": "any", "user.*": "users", "admin.*": "admins"})
    assert router.explain("user.login", {}) == (
        "NotificationRouter routed 'user.login' to 'users': pattern 'user.*' (no exact route); "
        "also matched, less specific: '*'."
    )
    assert (
        router.explain("x", {})
        == "NotificationRouter routed 'x' to 'any': pattern '*' (no exact route)."
    )


def test_explain_the_default() -> None:
    assert NotificationRouter().explain("order.created", {}) == (
        "NotificationRouter routed 'order.created' to 'default_queue': no route matches, "
        "so default_queue."
    )


def test_explain_unroutable() -> None:
    text = NotificationRouter(default_queue=None).explain("order.created", {})
    assert text == (
        "NotificationRouter routed 'order.created' to 'unroutable': no route matches and "
        "default_queue is None, so the message is unroutable and goes to the dead-letter "
        "queue 'unroutable'."
    )


def test_explain_agrees_with_route_message() -> None:
    router = NotificationRouter(routes={"user.*": "users", "user.email": "mail", "a?": "short"})
    for key in ("user.email", "user.sms", "ab", "abc"):
        assert f"to {router.route_message(key, {})!r}" in router.explain(key, {})


# --- options ----------------------------------------------------------------------------------
def test_options_as_keywords_a_mapping_or_a_model_agree() -> None:
    routes = {"user.*": "users"}
    by_keywords = NotificationRouter(routes=routes, default_queue=None)
    by_mapping = NotificationRouter({"routes": routes, "default_queue": None})
    by_model = NotificationRouter(NotificationRouterOptions(routes=routes, default_queue=None))
    mixed = NotificationRouter({"routes": routes}, default_queue=None)
    for router in (by_keywords, by_mapping, by_model, mixed):
        assert router.options == by_keywords.options
        assert router.route_message("user.x", {}) == "users"
        assert router.route_message("other", {}) == "unroutable"


def test_routes_may_be_any_mapping_and_are_copied() -> None:
    routes = {"user.email": "email_queue"}
    router = NotificationRouter(routes=SEED_ROUTES)
    assert router.route_message("admin.alert", {}) == "admin_queue"
    mine = NotificationRouter(routes=routes)
    routes["user.email"] = "changed"
    assert mine.route_message("user.email", {}) == "email_queue"
    with pytest.raises(TypeError):
        mine.routes["x"] = "y"  # type: ignore[index]


def test_repr_shows_the_options() -> None:
    router = NotificationRouter(routes={"a": "b"}, default_queue=None)
    assert repr(router) == (
        "NotificationRouter(routes={'a': 'b'}, default_queue=None, dead_letter_queue='unroutable')"
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"routes": {"user.email": ""}},
            "routes['user.email'] = '': a queue name must be a non-empty string",
        ),
        ({"routes": {"user.email": "  "}}, "must be a non-empty string"),
        ({"routes": {"": "q"}}, "a routing key or pattern must be a non-empty string"),
        ({"routes": {" user.email": "q"}}, "' user.email' has spaces around it; remove them"),
        ({"routes": {"user.email": "q "}}, "a queue name 'q ' has spaces around it"),
        ({"routes": {1: "q"}}, "routes[1] (the key) = 1: Input should be a valid string"),
        ({"routes": {"user.email": 5}}, "routes['user.email'] = 5: Input should be a valid string"),
        ({"routes": ["user.email"]}, "routes = ['user.email']: Input should be a valid dictionary"),
        ({"default_queue": ""}, "default_queue = '': default_queue must be a non-empty string"),
        ({"dead_letter_queue": ""}, "dead_letter_queue = ''"),
        ({"dead_letter_queue": None}, "dead_letter_queue = None: Input should be a valid string"),
        ({"route": {}}, "route = {}: Extra inputs are not permitted"),
    ],
)
def test_bad_options_fail_at_construction_naming_them(
    options: dict[Any, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        NotificationRouter(options)
    message = str(info.value)
    assert message.startswith("Invalid options for the router 'notification' (NotificationRouter)")
    assert expected in message
    assert "Allowed options: routes (dict[str, str]), default_queue (str | None), " in message


def test_an_unquoted_dotted_toml_key_gets_a_hint() -> None:
    # `[router_options.routes]` then `user.email = "email_queue"` parses as a nested table.
    with pytest.raises(ConfigError, match=r'quote a dotted routing key: "user.email" = "a_queue"'):
        NotificationRouter(routes={"user": {"email": "email_queue"}})


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="default_queue"):
        NotificationRouter(default_queue="")


def test_positional_options_that_are_not_a_mapping_are_refused() -> None:
    with pytest.raises(TypeError, match=r"keywords or one mapping.*routes="):
        NotificationRouter("user.email")
