"""Messaging benchmark: cachemesh's ``MessageQueue`` against raw kombu, on Redis and RabbitMQ.

Publish and consume throughput, measured in ONE run, side by side, on the same broker, so the
figures compare as ratios (see /work/shared/anchors/performance-baselines.md: a shared, noisy
2-core VM; absolute figures move between runs, ratios inside one run are what count).

    cd /work/main && .venv/bin/python bench/bench_messaging.py [--repeat N] [--quick]
        [--json PATH] [--messages N] [--slices S] [--no-redis] [--no-amqp]

Contenders, per broker, each doing the same work with the same guarantees:

- cachemesh ``MessageQueue`` (asyncio): ``await mq.publish("bench", body)``, then
  ``await mq.consume("bench", handler, consumer_name=...)`` until the handler has seen every
  message (the consumer acks after each handler call), then ``await consumer.stop()``;
- cachemesh ``SyncMessageQueue``: the same with the blocking API (consumer in a thread);
- raw kombu: ``Producer.publish(body, serializer="json")`` to the same kind of queue, then a
  ``Consumer(prefetch_count=P)`` with ``message.ack()`` in its callback, ``drain_events``
  until every message is in. P is what cachemesh's consumer holds unacked on that broker:
  the amqp transport's ``prefetch`` default on RabbitMQ, 1 on Redis (one stream entry a
  read), so both sides batch alike.

Brokers: RabbitMQ at 127.0.0.1:5672 (guest/guest; the ``amqp`` transport: durable queues,
persistent messages, publisher confirms, manual acks; kombu is given the same: a durable
queue, ``delivery_mode=2``, ``confirm_publish=True``, as many unacked messages in hand), and a
private ``redis-server`` this script starts on a free loopback port and stops by its pid
(never the shared one; cachemesh's ``redis`` transport is Redis Streams with a consumer group,
kombu's Redis transport is lists with its own unacked bookkeeping: each library's way of
doing at-least-once on Redis). Every contender has its own queue, named
``cachemesh-bench-<random>-<contender>``; every queue (and its dead-letter and delay queues)
is deleted at the end, also after an error or Ctrl-C.

Method
- The body is ``{"i": n, "event": "signup", "user_id": 42}``; every consumer checks it got
  each ``i`` exactly once.
- A sample is ``--messages`` messages per contender, cut into ``--slices`` slices; each slice
  of each contender publishes its share (timed), then consumes it (timed, from the start of
  the consumer to the last message handled; the consumer's stop is not timed). The
  contenders run interleaved, slice by slice, in list order on even slices and reversed on
  odd ones, so each sees the same stretch of machine time.
- The ratio of a row is the median over the ``--repeat`` samples of (cachemesh msgs/s ÷ kombu
  msgs/s, both from the same sample); min and max of those per-sample ratios are reported.
- No target is set for messaging (issue 8 asks for the figures); > 1 means cachemesh is faster.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bench_env
import harness
from harness import comparison, print_header
from private_redis import RedisServer

PACKAGES = [
    "cachemesh",
    "cachemesh-redis-backend",
    "cachemesh-kombu-transport",
    "kombu",
    "amqp",
    "redis",
    "hiredis",
]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"
ROUTING_KEY = "bench"
#: Seconds a consume phase may take before the run is called stuck.
STUCK_AFTER = 120.0


def body(i: int) -> dict[str, Any]:
    return {"i": i, "event": "signup", "user_id": 42}


@dataclass
class Contender:
    """One library on one broker: `publish(bodies)` and `consume(n)` each return the wall
    nanoseconds they took; `consume` also checks what arrived."""

    id: str
    broker: str
    label: str
    publish: Callable[[list[dict[str, Any]]], int]
    consume: Callable[[list[int]], int]
    close: Callable[[], None]
    #: per sample: (publish ns, consume ns, messages)
    samples: list[tuple[int, int, int]] = field(default_factory=list)

    def rate(self, phase: str, sample: tuple[int, int, int]) -> float:
        pub, con, n = sample
        ns = {"publish": pub, "consume": con, "both": pub + con}[phase]
        return n / (ns / 1e9)

    def median_rate(self, phase: str) -> float:
        return statistics.median(self.rate(phase, s) for s in self.samples)


def _check(broker: str, who: str, got: list[int], want: list[int]) -> None:
    if sorted(got) != want:
        missing = sorted(set(want) - set(got))[:5]
        extra = len(got) - len(set(got))
        raise RuntimeError(
            f"{who} on {broker}: consumed {len(got)} messages for {len(want)} published "
            f"(first missing: {missing}, duplicates: {extra}); the queue was not empty at "
            "the start, or a message was lost."
        )


# --------------------------------------------------------------------------------------------
# cachemesh
# --------------------------------------------------------------------------------------------
def cachemesh_sync(broker: str, url: str, queue_name: str) -> Contender:
    from cachemesh import SyncMessageQueue

    mq = SyncMessageQueue(url, queue_name=queue_name, poll_interval=0.05)
    publish_one = mq.publish

    def publish(bodies: list[dict[str, Any]]) -> int:
        t0 = time.perf_counter_ns()
        for b in bodies:
            publish_one(ROUTING_KEY, b)
        return time.perf_counter_ns() - t0

    def consume(want: list[int]) -> int:
        got: list[int] = []
        done = threading.Event()
        n = len(want)

        def handler(message: Any) -> None:
            got.append(message.body["i"])
            if len(got) >= n:
                done.set()

        t0 = time.perf_counter_ns()
        consumer = mq.consume(ROUTING_KEY, handler, consumer_name="bench")
        finished = done.wait(STUCK_AFTER)
        elapsed = time.perf_counter_ns() - t0
        consumer.stop()
        if not finished:
            raise RuntimeError(f"SyncMessageQueue on {broker}: {len(got)}/{n} after {STUCK_AFTER}s")
        _check(broker, "SyncMessageQueue", got, want)
        return elapsed

    def close() -> None:
        try:
            mq.transport.purge(mq.queue_for(ROUTING_KEY))
        finally:
            mq.close()

    return Contender(
        f"{broker}.cm.sync", broker, "cachemesh SyncMessageQueue", publish, consume, close
    )


def cachemesh_async(
    broker: str, url: str, queue_name: str, loop: asyncio.AbstractEventLoop
) -> Contender:
    from cachemesh import MessageQueue

    mq = MessageQueue(url, queue_name=queue_name, poll_interval=0.05)
    publish_one = mq.publish

    async def apublish(bodies: list[dict[str, Any]]) -> int:
        t0 = time.perf_counter_ns()
        for b in bodies:
            await publish_one(ROUTING_KEY, b)
        return time.perf_counter_ns() - t0

    async def aconsume(want: list[int]) -> int:
        got: list[int] = []
        done = asyncio.Event()
        n = len(want)

        def handler(message: Any) -> None:
            got.append(message.body["i"])
            if len(got) >= n:
                done.set()

        t0 = time.perf_counter_ns()
        consumer = await mq.consume(ROUTING_KEY, handler, consumer_name="bench")
        try:
            await asyncio.wait_for(done.wait(), STUCK_AFTER)
        except asyncio.TimeoutError:
            raise RuntimeError(
                f"MessageQueue on {broker}: {len(got)}/{n} after {STUCK_AFTER}s"
            ) from None
        finally:
            elapsed = time.perf_counter_ns() - t0
            await consumer.stop()
        _check(broker, "MessageQueue", got, want)
        return elapsed

    async def aclose() -> None:
        try:
            await mq.transport.apurge(mq.queue_for(ROUTING_KEY))
        finally:
            await mq.close()

    return Contender(
        f"{broker}.cm.async",
        broker,
        "cachemesh MessageQueue (asyncio)",
        lambda bodies: loop.run_until_complete(apublish(bodies)),
        lambda want: loop.run_until_complete(aconsume(want)),
        lambda: loop.run_until_complete(aclose()),
    )


# --------------------------------------------------------------------------------------------
# raw kombu
# --------------------------------------------------------------------------------------------
def raw_kombu(broker: str, url: str, queue_name: str) -> Contender:
    kombu = _kombu()
    Connection, Consumer, Producer, Queue = (
        kombu.Connection,
        kombu.Consumer,
        kombu.Producer,
        kombu.Queue,
    )
    options = {"confirm_publish": True} if broker == "amqp" else {}
    # Two connections, as cachemesh has (one to publish, one per consumer).
    pconn = Connection(url, transport_options=options)
    cconn = Connection(url, transport_options=options)
    name = f"{queue_name}.{ROUTING_KEY}"
    queue = Queue(name, routing_key=name, durable=True, auto_delete=False)
    pchannel = pconn.channel()
    queue.bind(pchannel).declare()
    producer = Producer(pchannel, auto_declare=False)
    cchannel = cconn.channel()
    publish_one = producer.publish

    def publish(bodies: list[dict[str, Any]]) -> int:
        t0 = time.perf_counter_ns()
        for b in bodies:
            publish_one(b, routing_key=name, serializer="json", delivery_mode=2)
        return time.perf_counter_ns() - t0

    def consume(want: list[int]) -> int:
        got: list[int] = []

        def on_message(decoded: Any, message: Any) -> None:
            got.append(decoded["i"])
            message.ack()

        n = len(want)
        deadline = time.monotonic() + STUCK_AFTER
        t0 = time.perf_counter_ns()
        with Consumer(
            cchannel,
            queues=[queue],
            callbacks=[on_message],
            prefetch_count=kombu_prefetch(broker),
            auto_declare=False,
        ):
            while len(got) < n:
                cconn.drain_events(timeout=max(0.1, deadline - time.monotonic()))
        elapsed = time.perf_counter_ns() - t0
        _check(broker, "kombu", got, want)
        return elapsed

    def close() -> None:
        try:
            queue.bind(pconn.channel()).delete()
        finally:
            pconn.release()
            cconn.release()

    return Contender(
        f"{broker}.kombu", broker, f"raw kombu {kombu_version()}", publish, consume, close
    )


def kombu_prefetch(broker: str) -> int:
    """Raw kombu's prefetch: as many unacked messages as cachemesh's consumer holds."""
    if broker != "amqp":
        return 1
    from cachemesh_kombu_transport.options import KombuTransportOptions

    return int(KombuTransportOptions.model_fields["prefetch"].default)


def _kombu() -> Any:
    """kombu, untyped: its API is called as documented, not checked by mypy."""
    import importlib

    return importlib.import_module("kombu")


def kombu_version() -> str:
    from importlib.metadata import version

    return version("kombu")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def rabbitmq_reachable() -> str | None:
    """None when RabbitMQ answers at AMQP_URL, else why not."""
    try:
        with _kombu().Connection(AMQP_URL, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"RabbitMQ at 127.0.0.1:5672 did not answer ({type(exc).__name__}: {exc})"
    return None


def run(contenders: list[Contender], messages: int, repeat: int, slices: int) -> None:
    """Interleaved samples: slice by slice, each contender publishes then consumes."""
    per_slice = max(1, messages // slices)
    counter = 0
    for r in range(repeat):
        totals = {c.id: [0, 0, 0] for c in contenders}
        for s in range(slices):
            order = contenders if s % 2 == 0 else contenders[::-1]
            for c in order:
                want = list(range(counter, counter + per_slice))
                counter += per_slice
                bodies = [body(i) for i in want]
                gc.collect()
                gc.disable()
                try:
                    pub = c.publish(bodies)
                    con = c.consume(want)
                finally:
                    gc.enable()
                t = totals[c.id]
                t[0] += pub
                t[1] += con
                t[2] += per_slice
        for c in contenders:
            pub, con, n = totals[c.id]
            c.samples.append((pub, con, n))
        print(f"  sample {r + 1}/{repeat} done", file=sys.stderr, flush=True)


PHASES = {"publish": "publish", "consume": "consume", "both": "publish + consume"}


def comparisons(contenders: list[Contender]) -> list[dict[str, Any]]:
    """cachemesh ÷ kombu per broker and phase: the median of the per-sample ratios."""
    out = []
    by = {c.id: c for c in contenders}
    for broker in ("redis", "amqp"):
        ref = by.get(f"{broker}.kombu")
        if ref is None:
            continue
        for flavour in ("async", "sync"):
            ours = by.get(f"{broker}.cm.{flavour}")
            if ours is None:
                continue
            for phase, what in PHASES.items():
                ratios = [
                    ours.rate(phase, a) / ref.rate(phase, b)
                    for a, b in zip(ours.samples, ref.samples, strict=True)
                ]
                value = statistics.median(ratios)
                out.append(
                    comparison(
                        f"{ours.id}.{phase}",
                        f"{broker} {phase}: {ours.label}",
                        "kombu",
                        "speed_ratio",
                        value,
                        per_repeat=ratios,
                        broker=broker,
                        phase=phase,
                        cachemesh=ours.id,
                        reference=ref.id,
                        text=(
                            f"{broker} {what}: {ours.label} "
                            f"{ours.median_rate(phase):,.0f} msgs/s vs {ref.label} "
                            f"{ref.median_rate(phase):,.0f} msgs/s = {value:.2f}x (per-sample "
                            f"{min(ratios):.2f}-{max(ratios):.2f}x)"
                        ),
                    )
                )
    return out


def table(contenders: list[Contender]) -> str:
    rows = [
        "| broker | contender | publish msgs/s | consume msgs/s | publish + consume msgs/s |"
        " spread (both) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for c in contenders:
        both = [c.rate("both", s) for s in c.samples]
        spread = (max(both) - min(both)) / statistics.median(both)
        rows.append(
            f"| {c.broker} | {c.label} | {c.median_rate('publish'):,.0f} | "
            f"{c.median_rate('consume'):,.0f} | {c.median_rate('both'):,.0f} | {spread:.0%} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, slices=5, quick="a tenth of the messages, 3 samples")
    parser.add_argument(
        "--messages", type=int, default=1000, help="messages per contender per sample"
    )
    parser.add_argument("--no-redis", action="store_true", help="leave out the Redis rows")
    parser.add_argument("--no-amqp", action="store_true", help="leave out the RabbitMQ rows")
    args = harness.parse(parser, argv)
    if args.messages < args.slices:
        parser.error("--messages must be >= --slices")
    if args.quick:
        args.messages = max(args.slices, args.messages // 10)
        args.repeat = min(args.repeat, 3)

    env = bench_env.environment(PACKAGES)
    print_header("cachemesh messaging benchmark", "bench_messaging.py", env)
    print(
        f"- {args.repeat} samples of {args.messages:,} messages per contender, in "
        f"{args.slices} interleaved slices{' [--quick]' if args.quick else ''}"
    )
    skipped: list[str] = []
    if args.no_amqp:
        skipped.append("RabbitMQ rows (--no-amqp)")
    else:
        why = rabbitmq_reachable()
        if why:
            skipped.append(f"RabbitMQ rows: {why}; start it, or pass --no-amqp")
    if args.no_redis:
        skipped.append("Redis rows (--no-redis)")
    for s in skipped:
        print(f"- left out: {s}")
    sys.stdout.flush()

    run_id = uuid.uuid4().hex[:8]
    loop = asyncio.new_event_loop()
    contenders: list[Contender] = []
    server = None
    try:
        if not args.no_redis:
            server = RedisServer(cpu=None)
            server.start()
            env["redis_server"] = server.version
            print(f"- redis: a private redis-server {server.version} on 127.0.0.1:{server.port}")
            url = f"redis://127.0.0.1:{server.port}/0"
            kurl = f"redis://127.0.0.1:{server.port}/1"
            contenders += [
                cachemesh_async("redis", url, f"cachemesh-bench-{run_id}-cm-async", loop),
                cachemesh_sync("redis", url, f"cachemesh-bench-{run_id}-cm-sync"),
                raw_kombu("redis", kurl, f"cachemesh-bench-{run_id}-kombu"),
            ]
        if not any(s.startswith("RabbitMQ") for s in skipped):
            print("- amqp: RabbitMQ at 127.0.0.1:5672 (guest)")
            contenders += [
                cachemesh_async("amqp", AMQP_URL, f"cachemesh-bench-{run_id}-cm-async", loop),
                cachemesh_sync("amqp", AMQP_URL, f"cachemesh-bench-{run_id}-cm-sync"),
                raw_kombu("amqp", AMQP_URL, f"cachemesh-bench-{run_id}-kombu"),
            ]
        if not contenders:
            print("nothing to measure: every broker was left out", file=sys.stderr)
            return 2
        print("", flush=True)
        print("  warming up (one slice each)", file=sys.stderr, flush=True)
        run(contenders, args.slices * 20 if not args.quick else args.slices * 5, 1, args.slices)
        for c in contenders:
            c.samples.clear()
        run(contenders, args.messages, args.repeat, args.slices)
    finally:
        for c in contenders:
            try:
                c.close()
            except Exception as exc:  # report, and go on cleaning the others
                print(f"cleaning up {c.id} failed: {exc!r}", file=sys.stderr)
        loop.close()
        if server is not None:
            server.stop()
    found = comparisons(contenders)
    harness.finish(
        env,
        args,
        table(contenders),
        found,
        legend=f"msgs/s = the median over the {args.repeat} samples; ",
        messages=args.messages,
        skipped=skipped,
        results=[
            {
                "id": c.id,
                "broker": c.broker,
                "benchmark": c.label,
                "samples": [
                    {"publish_ns": p, "consume_ns": q, "messages": n} for p, q, n in c.samples
                ],
                "publish_msgs_per_s": c.median_rate("publish"),
                "consume_msgs_per_s": c.median_rate("consume"),
                "both_msgs_per_s": c.median_rate("both"),
            }
            for c in contenders
        ],
        # The table shows the two phases; publish + consume stays in the report and here.
        comparisons=[c for c in found if c["phase"] != "both"],
        both=[c for c in found if c["phase"] == "both"],
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main, "queues deleted, redis-server stopped")
