"""Task status as one small answer, and progress reporting from inside a task.

Celery reports ``PENDING`` for any id it has no record of, including ids nobody ever
sent, and keeps progress, results and errors in one untyped ``info`` field. `TaskStatus`
splits them into named fields and adds ``UNKNOWN``, so an API can answer 404 for a typo.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from celery.result import AsyncResult  # type: ignore[import-untyped]

#: The custom state `report_progress` publishes.
PROGRESS = "PROGRESS"
#: Reported when Celery says PENDING and no marker shows the id was ever sent.
UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class TaskStatus:
    """What is known about one task id.

    ``state`` is PENDING, STARTED, PROGRESS, RETRY, SUCCESS, FAILURE, REVOKED or UNKNOWN.
    ``current``/``total``/``status`` are set for PROGRESS, ``result`` for SUCCESS,
    ``error`` (``"Type: message"``) for FAILURE and RETRY, ``traceback`` for FAILURE.
    """

    task_id: str
    state: str
    current: int | None = None
    total: int | None = None
    status: str | None = None
    result: Any = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ready(self) -> bool:
        """True once the task will not change state again."""
        return self.state in {"SUCCESS", "FAILURE", "REVOKED"}

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for an HTTP status endpoint)."""
        return asdict(self)


def _error_text(info: Any) -> str | None:
    if isinstance(info, BaseException):
        return f"{type(info).__name__}: {info}"
    return None if info is None else str(info)


def read_status(app: Any, task_id: str, sent: bool | None) -> TaskStatus:
    """Build a `TaskStatus` from the result backend; `sent` is the marker (None: unknown)."""
    result = AsyncResult(task_id, app=app)
    state = str(result.state)
    info = result.info
    if state == "PENDING":
        return TaskStatus(task_id, UNKNOWN if sent is False else "PENDING")
    if state == PROGRESS and isinstance(info, dict):
        return TaskStatus(
            task_id,
            state,
            current=info.get("current"),
            total=info.get("total"),
            status=info.get("status"),
        )
    if state == "SUCCESS":
        return TaskStatus(task_id, state, result=info)
    if state == "FAILURE":
        return TaskStatus(task_id, state, error=_error_text(info), traceback=result.traceback)
    if state == "RETRY":
        return TaskStatus(task_id, state, error=_error_text(info))
    return TaskStatus(task_id, state)


def report_progress(task: Any, current: int, total: int, status: str = "") -> None:
    """Publish ``PROGRESS`` with ``current``/``total``/``status`` from a bound task.

    Call it as ``report_progress(self, i, n, "sending")`` inside ``@app.task(bind=True)``.
    """
    if current < 0 or total < 0:
        raise ValueError(f"progress must not be negative, got current={current} total={total}")
    if total and current > total:
        raise ValueError(f"current ({current}) must not exceed total ({total})")
    task.update_state(state=PROGRESS, meta={"current": current, "total": total, "status": status})
