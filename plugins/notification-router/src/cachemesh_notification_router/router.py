"""The ``notification`` router: a routing table of exact keys and fnmatch-style patterns.

Its defaults are the guide's table (SPEC §9), so ``NotificationRouter()`` routes
``user.email`` to ``email_queue`` and anything unknown to ``default_queue``. A table
usually starts with exact keys and grows patterns (``user.*``); when both match, the
answer must not depend on dict order, so the choice is a fixed precedence:

1. an exact key (a key without ``*``, ``?`` or ``[...]``) equal to the routing key;
2. else the most specific matching pattern: more literal characters, then fewer ``*``,
   then more one-character wildcards (``?``, ``[...]``), then a longer literal prefix,
   then the one declared first;
3. else ``default_queue``;
4. else (``default_queue = None``) ``dead_letter_queue``: an unroutable message is kept
   where someone can look at it, never silently dropped (filters are what drop).

The precedence is computed once at construction; routing is a dict lookup, then the
patterns' regexes in precedence order until one matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import translate
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, cast

from cachemesh.messaging import MessageRouter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ._options import build_options

#: The guide's routing table (SPEC §9): the default of ``routes``.
SEED_ROUTES: Mapping[str, str] = MappingProxyType(
    {
        "user.email": "email_queue",
        "user.sms": "sms_queue",
        "user.push": "push_queue",
        "admin.alert": "admin_queue",
    }
)

#: Where the pattern syntax differs from a literal key.
WILDCARDS = frozenset("*?[")


def _check_name(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} has spaces around it; remove them")
    return value


#: A routing key or pattern, and a queue name: non-empty, no spaces around (a stray space
#: would make a route that never matches, or a queue nobody consumes).
RouteKey = Annotated[str, AfterValidator(lambda v: _check_name(v, "a routing key or pattern"))]
QueueName = Annotated[str, AfterValidator(lambda v: _check_name(v, "a queue name"))]


class NotificationRouterOptions(BaseModel):
    """Options of the ``notification`` router (router_options in a config file)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    routes: dict[RouteKey, QueueName] = Field(
        default_factory=lambda: dict(SEED_ROUTES),
        description=(
            "Routing key or fnmatch pattern (*, ?, [...]) -> queue name. Replaces the "
            "guide's table as a whole when given."
        ),
    )
    default_queue: str | None = Field(
        "default_queue",
        description="Queue of a routing key no route matches; None makes it unroutable.",
    )
    dead_letter_queue: str = Field(
        "unroutable",
        description="Queue of unroutable messages (only used when default_queue is None).",
    )

    @field_validator("routes", mode="before")
    @classmethod
    def _no_nested_tables(cls, value: Any) -> Any:
        # In TOML, `user.email = "q"` (unquoted) is a nested table {"user": {"email": "q"}};
        # say how to write it rather than "Input should be a valid string".
        if not isinstance(value, Mapping):
            return value
        for key, queue in value.items():
            if isinstance(queue, Mapping):
                raise ValueError(
                    f"routes[{key!r}] is a table, not a queue name; in TOML quote a "
                    f'dotted routing key: "{key}.{next(iter(queue), "...")}" = "a_queue"'
                )
        return dict(value)  # strict mode takes only a dict; any read-only mapping will do

    @field_validator("default_queue")
    @classmethod
    def _check_default(cls, value: str | None) -> str | None:
        return None if value is None else _check_name(value, "default_queue")

    @field_validator("dead_letter_queue")
    @classmethod
    def _check_dead_letter(cls, value: str) -> str:
        return _check_name(value, "dead_letter_queue")


@dataclass(frozen=True)
class Pattern:
    """One glob route, with what ranks it against the others."""

    pattern: str
    queue: str
    index: int
    literals: int
    stars: int
    singles: int
    prefix: int
    regex: re.Pattern[str]

    @property
    def rank(self) -> tuple[int, int, int, int, int]:
        """Sort key: the most specific pattern first (see the module docstring)."""
        return (-self.literals, self.stars, -self.singles, -self.prefix, self.index)

    @classmethod
    def parse(cls, pattern: str, queue: str, index: int) -> Pattern:
        literals, stars, prefix, wildcards = _measure(pattern)
        regex = re.compile(translate(pattern))
        singles = wildcards - stars
        return cls(pattern, queue, index, literals, stars, singles, prefix, regex)


def is_pattern(key: str) -> bool:
    """Whether `key` has a wildcard, so fnmatch rules match it (``a[1`` has none: an
    unclosed ``[`` is a literal character, as in fnmatch)."""
    return any(ch in WILDCARDS for ch in key) and _measure(key)[3] > 0


def _measure(pattern: str) -> tuple[int, int, int, int]:
    """(literal characters, ``*`` count, literal prefix length, wildcards), tokenised as
    fnmatch does: ``[`` opens a class only when a ``]`` closes it, else it is literal."""
    literals = stars = wildcards = 0
    prefix: int | None = None
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch in "*?":
            stars += ch == "*"
            wildcards += 1
            prefix = literals if prefix is None else prefix
            i += 1
            continue
        if ch == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j < n:  # a class: one character from a set, no literal
                wildcards += 1
                prefix = literals if prefix is None else prefix
                i = j + 1
                continue
        literals += 1
        i += 1
    return literals, stars, literals if prefix is None else prefix, wildcards


@dataclass(frozen=True)
class Decision:
    """Where a routing key goes and the rule that sent it there."""

    queue: str
    rule: str  # "exact", "pattern", "default" or "unroutable"
    matched: str | None = None  # the exact key or the pattern
    also_matched: tuple[str, ...] = ()  # less specific patterns that matched too


class NotificationRouter(MessageRouter):
    """The guide's notification routing table, with glob patterns and an explanation.

    ``NotificationRouter()`` is SPEC §9's table; ``NotificationRouter(routes={...})`` or
    ``NotificationRouter({"routes": {...}})`` replaces it. Options are validated here, so
    a bad table fails when the router is built, not when the first message is sent.
    """

    name: ClassVar[str] = "notification"
    Options: ClassVar[type[BaseModel]] = NotificationRouterOptions

    def __init__(self, options: Any = None, **kwargs: Any) -> None:
        # A subclass that changes Options extends NotificationRouterOptions.
        opts = cast(NotificationRouterOptions, build_options(type(self), options, kwargs))
        self.options = opts
        self._exact = {k: q for k, q in opts.routes.items() if not is_pattern(k)}
        patterns = [
            Pattern.parse(key, queue, index)
            for index, (key, queue) in enumerate(opts.routes.items())
            if is_pattern(key)
        ]
        self._patterns = tuple(sorted(patterns, key=lambda p: p.rank))
        self._default = opts.default_queue
        self._dead_letter = opts.dead_letter_queue
        self._routes = dict(opts.routes)

    # --- what it was given --------------------------------------------------------------
    @property
    def routes(self) -> Mapping[str, str]:
        """The routing table as declared (read-only)."""
        return MappingProxyType(self._routes)

    @property
    def patterns(self) -> tuple[str, ...]:
        """The pattern keys, most specific first: the order they are tried in."""
        return tuple(p.pattern for p in self._patterns)

    @property
    def default_queue(self) -> str | None:
        return self._default

    @property
    def dead_letter_queue(self) -> str:
        return self._dead_letter

    # --- routing ------------------------------------------------------------------------
    def route_message(self, routing_key: str, message: Any = None) -> str:
        """The queue for `routing_key`; `message` is not looked at (routing is by key).

        The send path calls this for every message, so it stops at the first match;
        `decide` also collects the patterns that lost, for `explain`.
        """
        if not isinstance(routing_key, str) or not routing_key:
            raise ValueError(f"routing_key={routing_key!r}: give a non-empty str.")
        queue = self._exact.get(routing_key)
        if queue is not None:
            return queue
        for pattern in self._patterns:
            if pattern.regex.match(routing_key):
                return pattern.queue
        return self._dead_letter if self._default is None else self._default

    def decide(self, routing_key: str) -> Decision:
        """The queue for `routing_key` and which rule chose it."""
        if not isinstance(routing_key, str) or not routing_key:
            raise ValueError(f"routing_key={routing_key!r}: give a non-empty str.")
        exact = self._exact.get(routing_key)
        if exact is not None:
            return Decision(exact, "exact", routing_key)
        matches = [p for p in self._patterns if p.regex.match(routing_key)]
        if matches:
            best = matches[0]
            rest = tuple(p.pattern for p in matches[1:])
            return Decision(best.queue, "pattern", best.pattern, rest)
        if self._default is not None:
            return Decision(self._default, "default")
        return Decision(self._dead_letter, "unroutable")

    def explain(self, routing_key: str, message: Any = None) -> str:
        """One sentence: the queue, and the exact key, pattern or fallback that chose it."""
        d = self.decide(routing_key)
        head = f"{type(self).__name__} routed {routing_key!r} to {d.queue!r}"
        if d.rule == "exact":
            return f"{head}: exact route {d.matched!r}."
        if d.rule == "pattern":
            text = f"{head}: pattern {d.matched!r} (no exact route)"
            if d.also_matched:
                others = ", ".join(repr(p) for p in d.also_matched)
                text += f"; also matched, less specific: {others}"
            return text + "."
        if d.rule == "default":
            return f"{head}: no route matches, so default_queue."
        return (
            f"{head}: no route matches and default_queue is None, so the message is "
            f"unroutable and goes to the dead-letter queue {d.queue!r}."
        )

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump().items())
        return f"{type(self).__name__}({opts})"
