"""RabbitMQ through kombu passes the core's transport conformance suite, as a third-party
transport would, on classic queues (the default) and on quorum queues."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from cachemesh.errors import ConfigError
from cachemesh.messaging import Transport
from cachemesh.testing import TransportConformance

URL = "amqp://guest:guest@127.0.0.1:5672//"  # the tests' RabbitMQ (conftest.py)


class TestKombuTransport(TransportConformance):
    transport = "amqp"
    url = URL


class TestKombuTransportOnQuorumQueues(TransportConformance):
    """Quorum queues count redeliveries exactly; they have no priority, so the transport
    refuses one instead of ignoring it."""

    transport = "amqp"
    url = URL
    transport_options: ClassVar[dict[str, Any]] = {"queue_type": "quorum"}

    def test_priority_when_declared(self, transport_obj: Transport, queue: str) -> None:
        with pytest.raises(ConfigError, match="without priority"):
            transport_obj.send(queue, b"urgent", priority=5)
        transport_obj.send(queue, b"plain", priority=0)
        (delivery,) = self._receive(transport_obj, queue)
        assert delivery.payload == b"plain"
        transport_obj.ack(delivery)
