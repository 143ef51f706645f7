"""Messaging: `MessageQueue` over a transport (memory, Redis Streams, RabbitMQ), with
routers and filters for the send path. See ``docs/messaging.md``."""

from __future__ import annotations

from .message import Message, UndecodableMessage
from .policy import MessageValidationError, RetryPolicy
from .queue import Consumer, ConsumerStats, MessageQueue, SyncConsumer, SyncMessageQueue
from .routing import MessageFilter, MessageRouter
from .transport import (
    MAX_PRIORITY,
    Capabilities,
    DeadLetter,
    Delivery,
    Guarantee,
    Transport,
)

__all__ = [
    "MAX_PRIORITY",
    "Capabilities",
    "Consumer",
    "ConsumerStats",
    "DeadLetter",
    "Delivery",
    "Guarantee",
    "Message",
    "MessageFilter",
    "MessageQueue",
    "MessageRouter",
    "MessageValidationError",
    "RetryPolicy",
    "SyncConsumer",
    "SyncMessageQueue",
    "Transport",
    "UndecodableMessage",
]
