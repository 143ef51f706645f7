"""SPEC §10, part 3: Celery monitoring with `TaskMonitor` (and Flower).

`TaskMonitor` wraps Celery's `inspect()` with a deadline: every call answers within
`timeout` and says "no worker answered" instead of returning None. Needs a running worker
of `celery_app` (see example 04). For a dashboard, Flower works on the same app:

    cd examples && celery -A celery_app flower --port=5555   (workers started with -E)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from cachemesh import TaskMonitor
from cachemesh_celery_tasks import InspectReply
from celery_app import app, manager, process_order, send_email

monitor = TaskMonitor(app, timeout=1.0)


def wait_for(what: str, found: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        if time.monotonic() > deadline:
            sys.exit(f"{what}: not seen within {timeout}s")
        time.sleep(0.1)


alive = monitor.ping()
print(alive.message)
if not alive:
    sys.exit("start a worker: cd examples && celery -A celery_app worker --pool=threads")


def task_ids(reply_items: list[dict[str, Any]]) -> list[str]:
    # active() lists task requests; scheduled() wraps each in {"eta": ..., "request": ...}.
    return [item.get("request", item)["id"] for item in reply_items]


def listed(call: Callable[[], InspectReply], task_id: str) -> bool:
    return any(task_id in task_ids(items) for items in call().replies.values())


def finished(task_id: str) -> bool:
    return bool(manager.task_status(task_id).ready)


# A running task shows under active(); one with a countdown under scheduled().
# Long enough (15 x 0.3 s, a 5 s countdown) to be seen by inspect calls of up to 1 s each.
running = send_email.delay("ann@example.com", "Report", steps=15)
wait_for("the running task", lambda: listed(monitor.active, running.id))
print("active: examples.send_email is running")

later = process_order.apply_async((8,), countdown=5)
wait_for("the scheduled task", lambda: listed(monitor.scheduled, later.id))
print("scheduled: examples.process_order is waiting for its countdown")

depths = monitor.queue_depths()
print(f"queue depths: {depths}")

registered = monitor.registered()
names = sorted(
    {n for tasks in registered.replies.values() for n in tasks if n.startswith("examples.")}
)
print(f"registered: {names}")

for result in (running, later):
    wait_for("completion", partial(finished, result.id), timeout=30)
print(
    f"final states: {manager.task_status(running.id).state}, {manager.task_status(later.id).state}"
)

stats = monitor.stats()
for worker, info in stats.replies.items():
    print(
        f"stats: {worker} pool={info['pool']['implementation']} "
        f"processed={sum(info.get('total', {}).values())}"
    )
