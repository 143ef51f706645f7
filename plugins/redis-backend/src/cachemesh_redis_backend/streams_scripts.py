"""The Redis Streams transport's keys, Lua scripts and reply parsing (no I/O here).

Each step that touches more than one key, or must not be half done, is one Lua script: a
crash or a lost reply between "ack the entry" and "put it in the delay set" would lose the
message or double it. Every key of a queue shares the hash tag ``{<queue>}``, so the
scripts also run on Redis Cluster. Times come from Redis ``TIME`` inside the scripts, so
the clocks of the producers and consumers do not matter.

Delayed messages are zset members ``<attempts>:<nonce>:<payload>`` scored by their due
time (ms): the nonce keeps two equal payloads apart, and the attempts so far travel with
the payload, as they do in the stream entry's ``a`` field.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cachemesh.messaging import DeadLetter, Delivery

from .locking import LuaScript

#: XADD with or without approximate trimming; ``maxlen`` 0 means "do not trim".
_XADD = """
local function xadd(key, maxlen, ...)
  if maxlen > 0 then
    return redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', ...)
  end
  return redis.call('XADD', key, '*', ...)
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

#: One round trip per receive: move due delayed entries to the stream, take over entries a
#: silent consumer held (XAUTOCLAIM) with their delivery counts, then read new entries.
#: KEYS: stream, delayed. ARGV: group, consumer, count, min_idle_ms (-1: no reclaim),
#: cursor, promote_batch, maxlen. Returns {cursor, ms until the next delayed entry or -1,
#: {{id, fields, times_delivered}...}}.
RECEIVE = LuaScript(
    _XADD
    + """
local stream, delayed, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local count, min_idle, cursor = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local maxlen = tonumber(ARGV[7])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', string.format('%d', now),
                       'LIMIT', 0, tonumber(ARGV[6]))
for _, member in ipairs(due) do
  local c1 = string.find(member, ':', 1, true)
  local c2 = string.find(member, ':', c1 + 1, true)
  xadd(stream, maxlen, 'p', string.sub(member, c2 + 1), 'a', string.sub(member, 1, c1 - 1))
  redis.call('ZREM', delayed, member)
end
local wait = -1
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if first[2] then wait = math.max(0, tonumber(first[2]) - now) end
local out = {}
if min_idle >= 0 then
  local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, min_idle, cursor,
                             'COUNT', count)
  cursor = claimed[1]
  for _, entry in ipairs(claimed[2]) do
    if type(entry) == 'table' and type(entry[2]) == 'table' then
      local info = redis.call('XPENDING', stream, group, entry[1], entry[1], 1)
      local times = 1
      if info[1] then times = info[1][4] end
      out[#out + 1] = {entry[1], entry[2], times}
    elseif type(entry) == 'table' then
      redis.call('XACK', stream, group, entry[1])  -- trimmed payload (Redis 6.2 reply)
    end
  end
end
if #out < count then
  local got = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', count - #out,
                         'STREAMS', stream, '>')
  if got then
    for _, entry in ipairs(got[1][2]) do out[#out + 1] = {entry[1], entry[2], 1} end
  end
end
return {cursor, wait, out}
"""
)

#: KEYS: stream. ARGV: group, id. XACK + XDEL: the stream keeps only unsettled messages.
ACK = LuaScript(
    """
local n = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return n
"""
)

#: Settle only a delivery this consumer still holds: one reclaimed meanwhile belongs to
#: the consumer that took it over.
_OWNED = """
local function owned(stream, group, id, consumer)
  local info = redis.call('XPENDING', stream, group, id, id, 1)
  return info[1] ~= nil and info[1][2] == consumer
end
"""

#: KEYS: stream, delayed. ARGV: group, id, consumer, delay_ms, attempts, payload, maxlen.
RETRY = LuaScript(
    _XADD
    + _OWNED
    + """
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local delay = tonumber(ARGV[4])
if delay > 0 then
  local member = ARGV[5] .. ':' .. ARGV[2] .. ':' .. ARGV[6]
  redis.call('ZADD', KEYS[2], string.format('%d', now_ms() + delay), member)
else
  xadd(KEYS[1], tonumber(ARGV[7]), 'p', ARGV[6], 'a', ARGV[5])
end
return 1
"""
)

#: KEYS: stream, dead. ARGV: group, id, consumer, payload, error, attempts, queue, maxlen.
DEAD_LETTER = LuaScript(
    _XADD
    + _OWNED
    + """
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) then return 0 end
xadd(KEYS[2], tonumber(ARGV[8]), 'p', ARGV[4], 'e', ARGV[5], 'a', ARGV[6], 'q', ARGV[7])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
)

#: KEYS: delayed. ARGV: delay_ms, member. The due time is the server's, not ours.
SEND_DELAYED = LuaScript(
    _XADD
    + """
return redis.call('ZADD', KEYS[1], string.format('%d', now_ms() + tonumber(ARGV[1])), ARGV[2])
"""
)

#: KEYS: stream, delayed. ARGV: group. Entries never delivered (stream length minus the
#: group's pending count; the stream holds only unsettled entries) plus delayed ones.
DEPTH = LuaScript(
    """
local pending = 0
local info = redis.pcall('XPENDING', KEYS[1], ARGV[1])
if type(info) == 'table' and info.err == nil then pending = info[1] end
local ready = redis.call('XLEN', KEYS[1]) - pending
if ready < 0 then ready = 0 end
return ready + redis.call('ZCARD', KEYS[2])
"""
)

#: KEYS: stream. ARGV: group, consumer. Forget a consumer that holds nothing (on close);
#: one that still holds entries stays, so another consumer can reclaim them.
FORGET_CONSUMER = LuaScript(
    """
local held = redis.pcall('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if type(held) == 'table' and held.err == nil and #held == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return -1
"""
)


@dataclass(frozen=True)
class StreamKeys:
    """The keys of one queue; the ``{queue}`` hash tag puts them in one Cluster slot."""

    stream: str
    delayed: str
    dead: str

    @classmethod
    def of(cls, prefix: str, queue: str) -> StreamKeys:
        stream = f"{prefix}:mq:{{{queue}}}"
        return cls(stream, f"{stream}:delayed", f"{stream}:dead")

    @property
    def all(self) -> list[str]:
        return [self.stream, self.delayed, self.dead]


def delayed_member(payload: bytes, attempts: int) -> bytes:
    """A delay-set member for a message sent with a delay (nonce from the client)."""
    return b"%d:%s:%s" % (attempts, uuid.uuid4().hex.encode(), payload)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(flat: Sequence[Any]) -> dict[bytes, Any]:
    keys, values = flat[0::2], flat[1::2]
    return {
        k if isinstance(k, bytes) else str(k).encode(): v
        for k, v in zip(keys, values, strict=False)
    }


def parse_receive(
    reply: Sequence[Any], queue: str, consumer: str
) -> tuple[str, int, list[Delivery]]:
    """(next XAUTOCLAIM cursor, ms until the next delayed entry or -1, deliveries)."""
    cursor, wait, entries = reply
    deliveries = []
    for entry_id, flat, times in entries:
        fields = _fields(flat)
        payload = fields.get(b"p")
        if payload is None:  # not one of ours: nothing to hand to a handler
            continue
        attempts = int(fields.get(b"a", 0)) + int(times)
        deliveries.append(Delivery(queue, bytes(payload), attempts, (_text(entry_id), consumer)))
    return _text(cursor), int(wait), deliveries


def parse_xreadgroup(reply: Any, queue: str, consumer: str) -> list[Delivery]:
    """Deliveries from a blocking XREADGROUP ``>`` reply (RESP2 list or RESP3 dict)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else [entries for _, entries in reply]
    deliveries = []
    for entries in streams:
        for item in entries:
            entry_id, fields = item[0], item[1]
            if isinstance(fields, (list, tuple)):
                fields = _fields(fields)
            payload = fields.get(b"p") if fields else None
            if payload is None:
                continue
            attempts = int(fields.get(b"a", 0)) + 1
            deliveries.append(
                Delivery(queue, bytes(payload), attempts, (_text(entry_id), consumer))
            )
    return deliveries


def parse_dead_letters(entries: Sequence[Any], queue: str) -> list[DeadLetter]:
    out = []
    for _, fields in entries:
        if isinstance(fields, (list, tuple)):
            fields = _fields(fields)
        out.append(
            DeadLetter(
                queue=_text(fields.get(b"q", queue)),
                payload=bytes(fields.get(b"p", b"")),
                error=_text(fields.get(b"e", b"")),
                attempts=int(fields.get(b"a", 0)),
            )
        )
    return out


def handle_of(delivery: Delivery) -> tuple[str, str]:
    """(entry id, consumer) of a delivery this transport made."""
    handle = delivery.handle
    if not (isinstance(handle, tuple) and len(handle) == 2):
        raise ValueError(
            f"{delivery!r} was not received from the redis transport (its handle must be "
            "(entry id, consumer))."
        )
    return str(handle[0]), str(handle[1])
