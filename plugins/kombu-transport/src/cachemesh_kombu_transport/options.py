"""The options of the ``amqp`` transport (``[transport_options]`` or ``transport_options=``).

Few on purpose: everything else (host, port, user, vhost, TLS) is in the broker URL, and
the queue layout is fixed so that every process using a queue declares it the same way:
RabbitMQ refuses a declaration whose arguments differ from the queue's.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class KombuTransportOptions(BaseModel):
    """Validated before any connection is opened, so a typo fails at start-up."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds to open a connection (TCP, TLS, AMQP handshake) before "
        "BackendUnavailableError.",
    )
    operation_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a broker reply may take (a declare, a publisher confirm) "
        "before the connection is dropped and BackendUnavailableError raised.",
    )
    heartbeat: float = Field(
        60.0,
        ge=0,
        description="AMQP heartbeat in seconds (0 disables it). With it, RabbitMQ notices "
        "a consumer whose host vanished without closing its socket and redelivers what it "
        "held; a background thread keeps idle connections alive.",
    )
    confirm_publish: bool = Field(
        True,
        description="Wait for RabbitMQ's publisher confirm, so send() returns only once "
        "the broker has the message. False is faster and may lose messages on a crash.",
    )
    prefetch: int = Field(
        10,
        ge=1,
        le=65535,
        description="Messages a consumer takes from RabbitMQ in one go and then handles "
        "one by one (not yet acknowledged; those it has not handled when it stops go back "
        "to the queue at once). More saves round trips; 1 takes one at a time.",
    )
    max_priority: int = Field(
        9,
        ge=0,
        le=255,
        description="x-max-priority of classic queues; cachemesh priorities 0..9 map "
        "directly. 0 declares queues without priority (a non-zero priority is refused).",
    )
    queue_type: Literal["classic", "quorum"] = Field(
        "classic",
        description="classic: priorities, the redelivered flag for crash counting. "
        "quorum: replicated, exact delivery counts, no priority.",
    )
