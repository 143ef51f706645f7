"""The lock primitives on Redis: Lua scripts, so each step is one atomic, retry-safe call.

Acquire sets the key with NX and PX and increments the fencing counter in the same
script; when the key already holds our token (a retry after a lost reply) it answers
"acquired" with the current fence instead of "taken", so a retry can never orphan our own
lock. The fence key shares the lock key's hash tag, so both live in one Cluster slot.
"""

from __future__ import annotations

import hashlib
from typing import Any

from redis.exceptions import NoScriptError

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


class LuaScript:
    """A Lua script run with EVALSHA, loaded on the server the first time it answers NOSCRIPT.

    redis-py's ``Script`` does the same through a few more layers per call; lock
    acquire + release is measured against redis-py's own ``Lock``, so the primitives call
    EVALSHA themselves. A NOSCRIPT reply means the script did not run, so sending it again
    after loading it is safe even for a write.
    """

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()

    def run(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)

    async def arun(self, client: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


ACQUIRE_SCRIPT = LuaScript(ACQUIRE)
RELEASE_SCRIPT = LuaScript(RELEASE)
EXTEND_SCRIPT = LuaScript(EXTEND)


def fence_key(key: str) -> str:
    """The fencing counter of `key`; the same hash tag keeps both in one Cluster slot."""
    return f"{key}:fence"


def ttl_ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def acquired(reply: Any) -> int | None:
    value = int(reply)
    return None if value < 0 else value
