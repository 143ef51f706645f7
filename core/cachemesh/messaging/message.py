"""The message a handler receives, and the envelope it travels in.

Every transport carries the same envelope (JSON by default): the id, routing key, body,
headers, publish time and priority. What only the transport knows (how many times the
message has been delivered) is added on receipt. A handler reads ``message.body`` or,
as in the guide, ``message["body"]``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import SerializationError
from ..serializers import CorruptEntry, Serializer

ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class Message(Mapping[str, Any]):
    """A delivered message. Also a read-only mapping: ``message["body"]``."""

    #: What the publisher sent (a dict in the guide's examples).
    body: Any
    #: The routing key it was published with.
    routing_key: str
    #: The queue it was read from.
    queue: str
    #: A unique id given at publish time; the same on every redelivery.
    id: str
    #: Free-form metadata sent along with the body.
    headers: Mapping[str, Any] = field(default_factory=dict)
    #: Deliveries so far, this one included: 1 the first time, more after a retry or a
    #: crashed consumer.
    attempts: int = 1
    #: When it was published (seconds since the epoch).
    timestamp: float = 0.0
    #: 0 (lowest) to 9; only transports that declare priority order by it.
    priority: int = 0

    def __getitem__(self, name: str) -> Any:
        if name in _FIELDS:
            return getattr(self, name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(_FIELDS)

    def __len__(self) -> int:
        return len(_FIELDS)


_FIELDS = tuple(f.name for f in fields(Message))


def new_message_id() -> str:
    return uuid.uuid4().hex


def encode_envelope(
    serializer: Serializer,
    *,
    body: Any,
    routing_key: str,
    message_id: str,
    headers: Mapping[str, Any] | None,
    priority: int,
) -> bytes:
    """The bytes a transport carries; raises `SerializationError` before anything is sent."""
    envelope = {
        "v": ENVELOPE_VERSION,
        "id": message_id,
        "rk": routing_key,
        "body": body,
        "headers": dict(headers or {}),
        "ts": time.time(),
        "prio": priority,
    }
    try:
        payload = serializer.dumps(envelope)
    except SerializationError as exc:
        raise SerializationError(
            f"The message for routing key {routing_key!r} cannot be sent: {exc}"
        ) from None
    return bytes(payload)


class UndecodableMessage(ValueError):
    """A payload that is not an envelope of ours (corrupt, foreign, or a newer version)."""


def decode_envelope(
    serializer: Serializer, payload: bytes, *, queue: str, attempts: int
) -> Message:
    try:
        envelope = serializer.loads(payload)
    except CorruptEntry as exc:
        raise UndecodableMessage(f"not a readable envelope: {exc}") from None
    if not isinstance(envelope, dict) or envelope.get("v") != ENVELOPE_VERSION:
        raise UndecodableMessage(f"not a version-{ENVELOPE_VERSION} cachemesh envelope")
    try:
        return Message(
            body=envelope["body"],
            routing_key=str(envelope["rk"]),
            queue=queue,
            id=str(envelope["id"]),
            headers=dict(envelope.get("headers") or {}),
            attempts=attempts,
            timestamp=float(envelope.get("ts", 0.0)),
            priority=int(envelope.get("prio", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UndecodableMessage(f"envelope field missing or malformed: {exc}") from None
