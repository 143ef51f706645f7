"""Options of the ``multi-level`` backend (``[backend_options]`` in cachemesh.toml).

Each level names another backend component and its options, so any in-process store can
sit in front of any shared one; the default is the pair the user guide describes: an LRU
memory store in front of Redis.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class LevelSpec(BaseModel):
    """One level: a backend component by name, built exactly as ``backend = ...`` would be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str = Field(description="Component name of the backend (memory, redis, ...).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="That backend's options (its [backend_options])."
    )
    strategy: str | None = Field(
        None,
        description="Eviction strategy of an in-process level (memory); None: the config's "
        "own strategy / strategy_options.",
    )
    strategy_options: dict[str, Any] = Field(default_factory=dict)


#: L1: memory on an LRU store (bounded, so a hot process never grows without limit);
#: L2: Redis with the config's REDIS_* settings.
DEFAULT_LEVELS: tuple[LevelSpec, LevelSpec] = (
    LevelSpec(backend="memory", strategy="lru", strategy_options={"max_size": 10_000}),
    LevelSpec(backend="redis"),
)


class MultiLevelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    levels: tuple[LevelSpec, LevelSpec] = Field(
        DEFAULT_LEVELS,
        description="[L1, L2]: L1 must be an in-process backend; L2 is the shared store.",
    )
    l1_ttl_cap: float = Field(
        60,
        gt=0,
        description="Longest an L1 entry lives, in seconds: the bound on staleness when an "
        "invalidation is lost.",
    )
    l1_values: Literal["payloads", "objects", "copies"] = Field(
        "payloads",
        description="What L1 keeps: the encoded payloads (decoded on every hit, never shared), "
        "the decoded objects (hits about as fast as the memory backend's; callers share them), or "
        "decoded objects handed out as copies (flat values: a dict.copy per hit; never shared).",
    )
    invalidation: Literal["auto", "pubsub", "none"] = Field(
        "auto",
        description="How other processes' L1 entries are dropped: pubsub (needs a Redis L2), "
        "none (only the TTL cap), auto (pubsub when L2 is Redis).",
    )
    channel: str | None = Field(
        None, description="Pub/sub channel; default '{CACHE_KEY_PREFIX}:cachemesh:l1-invalidate'."
    )
    heartbeat: float = Field(
        5,
        gt=0,
        description="Seconds between the subscriber's PINGs; no PONG within "
        "REDIS_SOCKET_TIMEOUT means a dead connection (L1 is bypassed and reset).",
    )

    @field_validator("levels", mode="before")
    @classmethod
    def _names_are_levels(cls, value: Any) -> Any:
        """``levels = ["memory", "redis"]`` is short for ``[{backend = "memory"}, ...]``."""
        if isinstance(value, (list, tuple)):
            return [{"backend": v} if isinstance(v, str) else v for v in value]
        return value
