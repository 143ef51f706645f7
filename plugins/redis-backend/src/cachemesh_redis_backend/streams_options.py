"""Options of the ``redis`` transport (``transport_options`` of a `MessageQueue`).

The broker URL gives the server (host, port, db, password, TLS or a unix socket) and
`CacheConfig` gives the key prefix and the socket timeouts; these options cover only what
is particular to a queue on Redis Streams.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RedisStreamsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    group: str = Field(
        "cachemesh",
        min_length=1,
        description="The consumer group every consumer of a queue joins (one per queue).",
    )
    maxlen: int | None = Field(
        None,
        ge=1,
        description="Approximate cap (XADD MAXLEN ~) on a queue's stream and on its dead "
        "letters. The stream holds only unsettled messages, so this caps the backlog: past it "
        "Redis drops the OLDEST entries, delivered or not. None (the default): never trim, "
        "so nothing is dropped without a trace.",
    )
    max_block: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Longest single XREADGROUP BLOCK, in seconds; a longer receive() loops. "
        "The blocking connection's socket timeout is max_block + block_margin.",
    )
    block_margin: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Seconds the blocking connection waits past the block time before it "
        "calls the server hung.",
    )
    promote_batch: int = Field(
        100, ge=1, le=10_000, description="Due delayed messages moved per receive()."
    )
    cluster: bool = Field(
        False, description="The URL names one node of a Redis Cluster; discover the others."
    )
