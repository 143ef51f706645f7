"""SPEC §5: `MessageQueue`: publish, consume with an async handler, publish_to_queue.

The broker comes from `MESSAGE_BROKER_URL` (`broker_url` in cachemesh.toml): the in-process
`memory://` transport by default, Redis Streams with `CACHEMESH_CONFIG=examples/redis.toml`.
The guide spells it out: `MessageQueue(broker_url="redis://localhost:6379/0", ...)`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachemesh import CacheConfig, Message, MessageQueue


async def main() -> None:
    config = CacheConfig()
    mq = MessageQueue(config.MESSAGE_BROKER_URL, queue_name="notifications", config=config)
    print(f"transport: {mq.transport.name} (delivery {mq.transport.capabilities.guarantee.value})")

    received: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def handle_email(message: Message) -> None:
        # The handler gets a Message; message["body"] is the published dict.
        received.append(message["body"])
        print(f"handled {message.routing_key}: {message['body']} (attempt {message.attempts})")
        if len(received) == 3:
            done.set()

    # consume() starts a consumer task and returns at once; publish() then feeds it.
    consumer = await mq.consume("user.email", handle_email)
    for user_id in (1, 2):
        await mq.publish("user.email", {"user_id": user_id, "template": "welcome"})

    # publish_to_queue names the queue itself: here the same queue as "user.email".
    queue = mq.queue_for("user.email")
    await mq.publish_to_queue(queue, {"user_id": 3, "template": "reminder"})
    print(f"routing key 'user.email' -> queue {queue!r}")

    await asyncio.wait_for(done.wait(), timeout=10)
    assert [m["user_id"] for m in received] == [1, 2, 3]  # FIFO for one consumer
    print(f"received {len(received)} messages in order")

    await consumer.stop()  # graceful: the message in hand is finished first
    await mq.transport.apurge(queue)  # the demo leaves nothing behind
    await mq.close()


asyncio.run(main())
