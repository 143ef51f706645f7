"""SPEC §9: message routing and filtering with `MessageRouter` and `MessageFilter`.

The send path of the guide: filters first, then the router picks the queue, then
`publish_to_queue`. `MessageQueue.send` strings the three together, and `explain` says
what each step decided. The broker comes from the config as in example 05.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachemesh import CacheConfig, Message, MessageFilter, MessageQueue, MessageRouter
from cachemesh_notification_router import NotificationRouter


class GuideRouter(MessageRouter):
    """The guide's table; anything else goes to default_queue."""

    routes = {
        "user.email": "email_queue",
        "user.sms": "sms_queue",
        "user.push": "push_queue",
        "admin.alert": "admin_queue",
    }

    def route_message(self, routing_key: str, message: dict[str, Any]) -> str:
        return self.routes.get(routing_key, "default_queue")


class PriorityFilter(MessageFilter):
    """Only high and urgent messages are sent; a missing priority means normal."""

    def filter(self, message: dict[str, Any]) -> bool:
        return message.get("priority", "normal") in ("high", "urgent")


class UserTypeFilter(MessageFilter):
    """Only the given user types; a missing user type means regular."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = allowed

    def filter(self, message: dict[str, Any]) -> bool:
        return message.get("user_type", "regular") in self.allowed


async def main() -> None:
    router = GuideRouter()
    for key in ("user.email", "user.sms", "user.push", "admin.alert", "order.created"):
        print(f"route {key} -> {router.route_message(key, {})}")
    # The cachemesh-notification-router plugin ships the same table, configurable by name.
    assert all(
        NotificationRouter().route_message(k, {}) == router.route_message(k, {})
        for k in ("user.email", "user.sms", "user.push", "admin.alert", "order.created")
    )

    config = CacheConfig()
    mq = MessageQueue(
        config.MESSAGE_BROKER_URL,
        queue_name="notifications",
        config=config,
        router=router,
        filters=[PriorityFilter(), UserTypeFilter(["premium", "vip"])],
    )
    delivered: list[dict[str, Any]] = []
    got_one = asyncio.Event()

    async def email_worker(message: Message) -> None:
        delivered.append(message["body"])
        got_one.set()

    consumer = await mq.consume_queue("email_queue", email_worker)

    urgent = {"to": "ann@example.com", "priority": "urgent", "user_type": "vip"}
    low = {"to": "bob@example.com", "priority": "low", "user_type": "vip"}
    regular = {"to": "cid@example.com", "priority": "high"}  # no user_type: regular
    for body in (urgent, low, regular):
        queue = await mq.send("user.email", body)  # the queue, or None when filtered out
        print(f"send {body['to']}: {queue or 'dropped'}")
    print(mq.explain("user.email", low))

    await asyncio.wait_for(got_one.wait(), timeout=10)
    await asyncio.sleep(0.3)  # nothing else may arrive: the other two were filtered out
    print(f"email_queue received: {[m['to'] for m in delivered]}")
    assert delivered == [urgent]

    await consumer.stop()
    await mq.transport.apurge("email_queue")
    await mq.close()


asyncio.run(main())
