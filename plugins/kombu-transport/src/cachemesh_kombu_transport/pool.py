"""The connections of one transport: one to publish, one per consumer, and the heartbeat
thread that keeps the idle ones alive.

One connection per consumer (name and queue) because py-amqp connections are not
thread-safe, an ack must go on the channel that delivered, and RabbitMQ reclaims per
connection: a consumer that dies gives back exactly what it held, nobody else's.
"""

from __future__ import annotations

import threading
import time
import weakref

from .link import Link
from .options import KombuTransportOptions

#: A consumer link unused this long, holding nothing, is closed when another is opened.
IDLE_LINK_SECONDS = 300.0


class LinkPool:
    """Links by role, created on first use; `close` ends them all (and the heartbeat)."""

    def __init__(self, url: str, options: KombuTransportOptions) -> None:
        self.url = url
        self.options = options
        self.publisher = Link(url, options, "publisher")
        self.consumers: dict[tuple[str, str], Link] = {}
        self._guard = threading.Lock()
        self._ticker: tuple[threading.Thread, threading.Event] | None = None

    def consumer(self, consumer: str, queue: str) -> Link:
        """The link of `consumer` reading `queue`."""
        key = (consumer, queue)
        with self._guard:
            link = self.consumers.get(key)
            if link is None:
                self._close_idle()
                link = Link(self.url, self.options, f"consumer {consumer!r} of {queue!r}")
                self.consumers[key] = link
        self.ensure_heartbeat()
        return link

    def _close_idle(self) -> None:
        """Consumers come and go (each `consume` names new ones): close the connections of
        those gone quiet that hold nothing."""
        now = time.monotonic()
        for key, link in list(self.consumers.items()):
            if link.outstanding or now - link.last_used < IDLE_LINK_SECONDS:
                continue
            if link.lock.acquire(blocking=False):
                try:
                    link.close()
                    del self.consumers[key]
                finally:
                    link.lock.release()

    def all(self) -> list[Link]:
        with self._guard:
            return [self.publisher, *self.consumers.values()]

    def close(self) -> None:
        """Close every connection; deliveries not yet settled go back to their queues."""
        with self._guard:
            links = [self.publisher, *self.consumers.values()]
            self.consumers.clear()
            ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker[1].set()
        for link in links:
            with link.lock:
                link.close()

    def ensure_heartbeat(self) -> None:
        """With a heartbeat, a daemon thread answers it on links nobody is using (an idle
        publisher, a consumer busy in its handler), so RabbitMQ does not drop them."""
        if not self.options.heartbeat:
            return
        with self._guard:
            if self._ticker is not None and self._ticker[0].is_alive():
                return
            stop = threading.Event()
            thread = threading.Thread(
                target=_keep_alive,
                args=(weakref.ref(self), stop, max(0.2, self.options.heartbeat / 4)),
                name="cachemesh amqp heartbeat",
                daemon=True,
            )
            self._ticker = (thread, stop)
        thread.start()


def _keep_alive(ref: weakref.ref[LinkPool], stop: threading.Event, every: float) -> None:
    """The heartbeat thread's loop; it holds no strong reference, so a transport dropped
    without close() is still collected (and the thread ends)."""
    while not stop.wait(every):
        pool = ref()
        if pool is None:
            return
        for link in pool.all():
            link.keepalive()
        del pool
