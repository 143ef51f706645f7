"""cachemesh-kombu-transport: the ``amqp`` message transport, RabbitMQ through kombu.

``MessageQueue("amqp://guest:guest@127.0.0.1:5672//", queue_name="notifications")`` picks
it by the URL's scheme (``amqp``, ``amqps`` or ``pyamqp``). See ``docs/plugins/
kombu-transport.md`` for what it guarantees and how delays and dead letters are kept.
"""

from __future__ import annotations

from cachemesh import hookimpl
from cachemesh.messaging import Transport

from .options import KombuTransportOptions
from .transport import KombuTransport

__all__ = ["KombuTransport", "KombuTransportOptions"]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_transports() -> list[type[Transport]]:
    return [KombuTransport]
