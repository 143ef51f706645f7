"""Options of the ``redis`` backend (``[backend_options]`` in cachemesh.toml).

Host, port, database, password, pool size and timeouts come from `CacheConfig`'s
``REDIS_*`` settings; these options add what the SPEC's settings cannot say: a URL, TLS,
an ACL user, a unix socket, Sentinel and Cluster, and the retry policy for reads.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class RedisOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr | None = Field(
        None,
        description="redis://, rediss:// (TLS) or unix:// URL; replaces REDIS_HOST/PORT/DB "
        "(and REDIS_PASSWORD when the URL has one). Kept secret: it may hold a password.",
    )
    username: str | None = Field(None, description="ACL user name (Redis 6+).")
    mode: Literal["standalone", "sentinel", "cluster"] = "standalone"
    sentinels: list[str] = Field(
        default_factory=list, description='Sentinel addresses "host:port" (mode = "sentinel").'
    )
    service_name: str = Field("mymaster", description="The master name Sentinel monitors.")
    sentinel_password: SecretStr | None = None
    cluster_nodes: list[str] = Field(
        default_factory=list, description='Startup nodes "host:port" (mode = "cluster").'
    )
    unix_socket_path: str | None = None
    ssl: bool = Field(False, description="TLS; implied by a rediss:// URL.")
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: Literal["required", "optional", "none"] = "required"
    ssl_check_hostname: bool = True
    health_check_interval: float = Field(30, ge=0, description="Seconds; 0 turns it off.")
    read_retries: int = Field(
        1,
        ge=0,
        le=5,
        description="Retries of idempotent reads after a connection error or "
        "timeout. Writes are never retried: a lost reply leaves their outcome unknown.",
    )
    scan_count: int = Field(1000, ge=10, description="COUNT hint of each SCAN step.")
    delete_batch: int = Field(500, ge=1, description="Keys per UNLINK in delete_pattern.")
    check_eviction_policy: bool = Field(
        True, description="Warn at start-up when maxmemory-policy could evict lock keys."
    )
