"""SPEC §4: Celery tasks through `CeleryManager`: status, progress, retries, failures.

It needs a running worker of `celery_app` (it starts none itself):

    export CELERY_BROKER_URL=redis://127.0.0.1:6379/0 CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/0
    (cd examples && celery -A celery_app worker --pool=threads) &
    python examples/04_celery_tasks.py
"""

from __future__ import annotations

import sys
import time
from typing import Any

from cachemesh import TaskMonitor
from celery_app import app, manager, process_order, send_email


def follow(name: str, result: Any, timeout: float = 60) -> Any:
    """Poll the task's status until it is final, printing each state change."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.task_status(result.id)
        label = status.state
        if status.state == "PROGRESS":
            label = f"PROGRESS {status.current}/{status.total}"
        if not seen or seen[-1] != label:
            seen.append(label)
        if status.ready:
            print(f"{name}: {' -> '.join(seen)}")
            return status
        time.sleep(0.05)
    sys.exit(f"{name}: no final state within {timeout}s (seen: {seen}); is the worker busy?")


# The guide's tasks need a worker: say so plainly instead of waiting forever.
if not TaskMonitor(app, timeout=2.0).ping():
    sys.exit(
        f"no worker answered on queue {app.conf.task_default_queue!r}: start one with "
        "`cd examples && celery -A celery_app worker --pool=threads`"
    )

# An id nobody ever sent reads UNKNOWN (plain Celery would say PENDING forever).
print(f"status of an id never sent: {manager.task_status('no-such-task').state}")

# A task that reports its progress, as the guide's status endpoint shows it.
# Six steps of 0.3 s: PROGRESS lasts long enough to be seen between two polls.
status = follow("send_email", send_email.delay("ann@example.com", "Welcome", steps=6))
assert status.state == "SUCCESS", status
print(f"result: {status.result}")

# A temporary error twice: retried with backoff (autoretry_for), then it succeeds. With
# full jitter a countdown may be 0, so RETRY can come and go between two polls; the
# retry count the task returns is the proof.
status = follow("send_email (2 timeouts)", send_email.delay("bob@example.com", "Hi", fail_times=2))
assert status.state == "SUCCESS" and status.result["retries"] == 2, status
print(f"succeeded after {status.result['retries']} retries")

# The guide's manual form: self.retry(countdown=..., exc=exc).
status = follow("process_order", process_order.delay(7, fail_times=1))
assert status.state == "SUCCESS", status
print(f"result: {status.result}")

# A permanent error is not in autoretry_for: straight to FAILURE, with the error.
status = follow("send_email (bad address)", send_email.delay("not-an-address", "Hi"))
assert status.state == "FAILURE", status
print(f"error: {status.error}")
