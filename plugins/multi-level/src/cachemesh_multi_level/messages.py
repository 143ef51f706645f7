"""The invalidation message: who sent it, and which keys (or which pattern) to drop.

JSON, so any client in any language can read or send one: ``{"src": "<instance id>",
"keys": [...]}`` or ``{"src": ..., "pattern": "<glob>"}``. The sender's id lets an
instance skip its own messages (it has already applied the change to its L1).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Invalidation:
    source: str
    keys: Sequence[str] = ()
    pattern: str | None = None


def prefix_of(source: str) -> bytes:
    """How every message `source` sends begins (the sender's own messages are skipped by
    this prefix alone, without decoding them)."""
    return b'{"src":' + json.dumps(source).encode() + b","


def encode_keys(source: str, keys: Sequence[str]) -> bytes:
    return json.dumps({"src": source, "keys": list(keys)}, separators=(",", ":")).encode()


def encode_pattern(source: str, pattern: str) -> bytes:
    return json.dumps({"src": source, "pattern": pattern}, separators=(",", ":")).encode()


def decode(data: bytes | str) -> Invalidation | None:
    """The message, or None when it is not one of ours (the caller then resets L1)."""
    try:
        body = json.loads(data)
        source = body["src"]
        keys = body.get("keys", [])
        pattern = body.get("pattern")
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    if not isinstance(source, str) or not isinstance(keys, list):
        return None
    if not all(isinstance(k, str) for k in keys) or not isinstance(pattern, (str, type(None))):
        return None
    return Invalidation(source, keys, pattern)
