"""The lock primitives on Redis: Lua scripts, so each step is one atomic, retry-safe call.

Acquire sets the key with NX and PX and increments the fencing counter in the same
script; when the key already holds our token (a retry after a lost reply) it answers
"acquired" with the current fence instead of "taken", so a retry can never orphan our own
lock. The fence key shares the lock key's hash tag, so both live in one Cluster slot.
"""

from __future__ import annotations

from typing import Any

ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return tonumber(redis.call('GET', KEYS[2]) or '0')
end
return -1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def fence_key(key: str) -> str:
    """The fencing counter of `key`; the same hash tag keeps both in one Cluster slot."""
    return f"{key}:fence"


def ttl_ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def acquired(reply: Any) -> int | None:
    value = int(reply)
    return None if value < 0 else value
