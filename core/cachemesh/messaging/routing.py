"""Routers and filters: the send path of SPEC §9 (filters first, then the route).

Subclass `MessageRouter` (``route_message``) and `MessageFilter` (``filter``) as the guide
does, or register them as components so a config file can name them. Each can also say
why it decided what it did (``explain``), which `MessageQueue.explain` strings together.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ..component import Component


class MessageRouter(Component):
    """Maps a routing key (and the message) to the name of the queue it goes to."""

    kind: ClassVar[str] = "router"

    def __init__(self, options: Any = None) -> None:
        self.options = self.parse_options(options)

    def route_message(self, routing_key: str, message: Any) -> str:
        """The queue `message`, sent with `routing_key`, goes to."""
        raise NotImplementedError(f"{type(self).__name__} must implement route_message()")

    def explain(self, routing_key: str, message: Any) -> str:
        """Why `route_message` picks its queue (subclasses can say more)."""
        queue = self.route_message(routing_key, message)
        return f"{type(self).__name__} routed {routing_key!r} to {queue!r}"


class MessageFilter(Component):
    """Decides whether a message is sent at all: ``filter(message)`` True lets it through."""

    kind: ClassVar[str] = "filter"

    def __init__(self, options: Any = None) -> None:
        self.options = self.parse_options(options)

    def filter(self, message: Any) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must implement filter()")

    def explain(self, message: Any) -> str:
        """Why `filter` lets the message through or drops it (subclasses can say more)."""
        verdict = "passes" if self.filter(message) else "drops"
        return f"{type(self).__name__} {verdict} the message"
