"""What a `MessageQueue` decides that does not depend on sync or async: which transport a
URL names, what it may be asked for, how a body is checked, and what happens to a message
whose handler failed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from ..errors import CachemeshError, ConfigError
from ..registry import ComponentRegistry
from .transport import MAX_PRIORITY, Capabilities, Guarantee, Transport

#: What ``require=`` may name, and how each is read from `Capabilities`.
REQUIREMENTS: dict[str, Callable[[Capabilities], bool]] = {
    "at-least-once": lambda c: c.guarantee is Guarantee.AT_LEAST_ONCE,
    "ordered": lambda c: c.ordered,
    "priority": lambda c: c.priority,
    "delay": lambda c: c.delay,
    "reclaim": lambda c: c.reclaim,
}


class MessageValidationError(CachemeshError, ValueError):
    """A body does not match the schema registered for its routing key."""


def transport_class(url: str, registry: ComponentRegistry, name: str | None) -> type[Transport]:
    """The transport `name` names, or the one registered for the URL's scheme."""
    if name:
        cls: type[Transport] = registry.resolve("transport", name, config_key="transport")
        return cls
    scheme = urlsplit(url).scheme
    if not scheme:
        raise ConfigError(
            f"broker_url {_safe(url)!r} has no scheme; use memory://, redis://host:6379/0 or "
            "amqp://user@host:5672//."
        )
    for kind, _, candidate in registry.items():
        if kind == "transport" and scheme in getattr(candidate, "schemes", ()):
            return candidate
    found: type[Transport] = registry.resolve(
        "transport", "redis" if scheme == "rediss" else scheme, config_key="broker_url scheme"
    )
    return found


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def check_requirements(transport: type[Transport], require: Iterable[str]) -> None:
    caps: Capabilities = transport.capabilities
    for need in require:
        test = REQUIREMENTS.get(need)
        if test is None:
            raise ConfigError(f"require={need!r} is unknown; choose from {sorted(REQUIREMENTS)}.")
        if not test(caps):
            raise ConfigError(
                f"The {transport.name!r} transport cannot give {need!r}: it is "
                f"{describe(caps)}. Pick a transport that does (redis:// for at-least-once "
                "with reclaim, amqp:// for broker-side priority), or drop the requirement."
            )


def describe(caps: Capabilities) -> str:
    extras = [name for name in ("ordered", "priority", "delay", "reclaim") if getattr(caps, name)]
    return f"{caps.guarantee.value}" + (f", with {', '.join(extras)}" if extras else "")


def check_send(transport: type[Transport], priority: int, delay: float) -> None:
    caps = transport.capabilities
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int 0..{MAX_PRIORITY}, got {priority!r}.")
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority={priority} is out of range: give 0 (lowest) .. {MAX_PRIORITY}.")
    if priority and not caps.priority:
        raise ConfigError(
            f"priority={priority} was asked, but the {transport.name!r} transport does not order "
            "by priority; send without one, or use a transport that has it."
        )
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValueError(f"delay={delay!r}: give seconds >= 0.")
    if delay and not caps.delay:
        raise ConfigError(
            f"delay={delay} was asked, but the {transport.name!r} transport cannot hold a "
            "message back; send it later yourself, or use a transport with delay."
        )


def validate_body(schemas: Mapping[str, type[BaseModel]], routing_key: str, body: Any) -> Any:
    """The body as sent: checked against the routing key's schema when there is one."""
    schema = schemas.get(routing_key)
    if schema is None:
        return body
    try:
        model = body if isinstance(body, schema) else schema.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()
        )
        raise MessageValidationError(
            f"The body for routing key {routing_key!r} does not match {schema.__name__}: "
            f"{problems}."
        ) from None
    return model.model_dump(mode="json")


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed delivery is handled: retried with exponential backoff, then dead-lettered."""

    max_deliveries: int = 5
    retry_delay: float = 1.0
    backoff: float = 2.0
    max_retry_delay: float = 300.0

    def __post_init__(self) -> None:
        if isinstance(self.max_deliveries, bool) or not isinstance(self.max_deliveries, int):
            raise ConfigError(f"max_deliveries={self.max_deliveries!r}: give an int >= 1.")
        if self.max_deliveries < 1:
            raise ConfigError(f"max_deliveries={self.max_deliveries}: give an int >= 1.")
        for name in ("retry_delay", "max_retry_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name}={value!r}: give seconds >= 0.")
        if not isinstance(self.backoff, (int, float)) or self.backoff < 1:
            raise ConfigError(f"backoff={self.backoff!r}: give a factor >= 1.")

    def next_delay(self, attempts: int) -> float | None:
        """Seconds until the next delivery, or None when the message is to be dead-lettered."""
        if attempts >= self.max_deliveries:
            return None
        return float(min(self.max_retry_delay, self.retry_delay * self.backoff ** (attempts - 1)))
