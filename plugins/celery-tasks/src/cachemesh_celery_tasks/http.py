"""HTTP endpoints for tasks (extra ``[fastapi]``): queue one, read its status.

The user guide's service exposes ``POST /tasks/send-email`` (answers ``{task_id, status:
"queued"}``) and ``GET /tasks/task-status/{task_id}``. `task_router` builds both as a
FastAPI ``APIRouter``, and any number of other "queue this task" endpoints, each with its
own pydantic request model, so the request is validated (422 naming the field) before
anything is queued. The status endpoint answers 404 for an id that was never sent
(``UNKNOWN``) instead of Celery's eternal ``PENDING``, and 503 when the broker or result
backend does not answer, with the cause in the server log rather than in the response.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Literal

# The ignores let `mypy --strict` pass where the optional FastAPI is not installed.
try:
    from fastapi import (  # type: ignore[import-not-found,unused-ignore]
        APIRouter,
        HTTPException,
    )
    from fastapi import (  # type: ignore[import-not-found,unused-ignore]
        Path as PathParam,
    )
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cachemesh_celery_tasks.http needs FastAPI: pip install 'cachemesh-celery-tasks[fastapi]'"
    ) from exc
from kombu.exceptions import OperationalError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis.exceptions import RedisError

from .manager import CeleryManager, ManagedTask, was_sent
from .status import UNKNOWN, TaskStatus, read_status

logger = logging.getLogger("cachemesh.celery.http")

_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
#: Errors that mean "the broker or result backend did not answer" (-> 503), not a bug.
UNAVAILABLE: tuple[type[BaseException], ...] = (OperationalError, RedisError, OSError)


class SendEmailRequest(BaseModel):
    """The body of ``POST /tasks/send-email``; passed to the task as keyword arguments."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(max_length=254, description="recipient address (name@domain)")
    subject: str = Field(min_length=1, max_length=998)
    body: str = Field(default="", max_length=1_000_000)

    @field_validator("to")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if not _ADDRESS.fullmatch(value):
            raise ValueError(f"must be an email address like name@example.com, got {value!r}")
        return value


class TaskQueued(BaseModel):
    """The answer to a queued task."""

    task_id: str
    status: Literal["queued"] = "queued"


def _model_kwargs(payload: BaseModel) -> dict[str, Any]:
    return payload.model_dump(mode="json")


@dataclass(frozen=True)
class TaskEndpoint:
    """``POST {prefix}/{path}``: validate the body with `model`, queue `task`.

    ``to_kwargs`` turns the validated body into the task's keyword arguments (default: the
    model's fields); ``options`` go to ``apply_async`` (``queue``, ``priority``...).
    """

    path: str
    task: Any
    model: type[BaseModel]
    to_kwargs: Callable[[Any], dict[str, Any]] = _model_kwargs
    options: Mapping[str, Any] = field(default_factory=dict)
    summary: str | None = None

    def __post_init__(self) -> None:
        if not self.path or "/" in self.path.strip("/") or "{" in self.path:
            raise ValueError(
                f"endpoint path must be one plain segment like 'send-email', got {self.path!r}"
            )
        if not callable(getattr(self.task, "apply_async", None)):
            raise TypeError(
                f"task must be a Celery task object (with apply_async), got {self.task!r}"
            )
        if not (isinstance(self.model, type) and issubclass(self.model, BaseModel)):
            raise TypeError(f"model must be a pydantic BaseModel class, got {self.model!r}")


def _status_reader(source: Any) -> Callable[[str], TaskStatus]:
    """``task_status`` of a `CeleryManager`, or of a Celery app (UNKNOWN only if managed)."""
    if isinstance(source, CeleryManager):
        return source.task_status
    app = source
    if not hasattr(app, "backend") or not hasattr(app, "conf"):
        raise TypeError(f"expected a CeleryManager or a celery.Celery app, got {source!r}")
    managed = isinstance(getattr(app, "Task", None), type) and issubclass(app.Task, ManagedTask)

    def read(task_id: str) -> TaskStatus:
        # A plain app leaves no "sent" markers: every unknown id would read UNKNOWN.
        return read_status(app, task_id, was_sent(app, task_id) if managed else None)

    return read


def _unavailable(what: str, exc: BaseException) -> HTTPException:
    logger.warning("%s: %s: %s", what, type(exc).__name__, exc)
    return HTTPException(status_code=503, detail=f"{what}; try again later")


def _add_submit(router: APIRouter, endpoint: TaskEndpoint, status_code: int) -> None:
    task, to_kwargs, options = endpoint.task, endpoint.to_kwargs, dict(endpoint.options)
    name = getattr(task, "name", "task")

    def submit(payload: BaseModel) -> TaskQueued:
        kwargs = to_kwargs(payload)
        try:
            result = task.apply_async(kwargs=kwargs, **options)
        except UNAVAILABLE as exc:
            what = f"could not queue {name}: the task broker did not answer"
            raise _unavailable(what, exc) from None
        return TaskQueued(task_id=str(result.id))

    # FastAPI reads the body type from the annotations: give it this endpoint's model.
    submit.__annotations__ = {"payload": endpoint.model, "return": TaskQueued}
    submit.__name__ = f"submit_{endpoint.path.strip('/').replace('-', '_')}"
    router.add_api_route(
        f"/{endpoint.path.strip('/')}",
        submit,
        methods=["POST"],
        status_code=status_code,
        response_model=TaskQueued,
        summary=endpoint.summary or f"Queue {name}",
    )


def task_router(
    source: Any,
    send_email_task: Any = None,
    *,
    endpoints: Iterable[TaskEndpoint] = (),
    prefix: str = "/tasks",
    status_path: str = "/task-status/{task_id}",
    submit_status_code: int = 202,
    include_traceback: bool = False,
    tags: list[str] | None = None,
) -> APIRouter:
    """An ``APIRouter`` with the task endpoints; mount it with ``app.include_router(...)``.

    `source` is a `CeleryManager` (or its Celery app). `send_email_task`, when given, is
    served at ``POST {prefix}/send-email`` with `SendEmailRequest`; `endpoints` add more.
    ``GET {prefix}{status_path}`` answers a `TaskStatus`: 404 for ``UNKNOWN``,
    503 when the result backend does not answer. Tracebacks stay out of the answer unless
    ``include_traceback=True`` (they show code paths to any caller).
    """
    read_status_of = _status_reader(source)
    if "{task_id}" not in status_path:
        raise ValueError(f"status_path must contain '{{task_id}}', got {status_path!r}")
    all_endpoints = list(endpoints)
    if send_email_task is not None:
        all_endpoints.insert(0, TaskEndpoint("send-email", send_email_task, SendEmailRequest))
    paths = [e.path.strip("/") for e in all_endpoints]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise ValueError(f"two task endpoints share the path(s) {duplicates}")

    router = APIRouter(prefix=prefix, tags=list(tags) if tags is not None else ["tasks"])
    for endpoint in all_endpoints:
        _add_submit(router, endpoint, submit_status_code)

    def task_status(
        task_id: Annotated[str, PathParam(min_length=1, max_length=255, pattern=r"^[\w.:@+=-]+$")],
    ) -> TaskStatus:
        try:
            status = read_status_of(task_id)
        except UNAVAILABLE as exc:
            what = "could not read the task status: the result backend did not answer"
            raise _unavailable(what, exc) from None
        if status.state == UNKNOWN:
            raise HTTPException(
                status_code=404,
                detail=f"no task with id {task_id!r}: it was never sent, or its record expired",
            )
        return status if include_traceback else replace(status, traceback=None)

    router.add_api_route(
        status_path,
        task_status,
        methods=["GET"],
        response_model=TaskStatus,
        summary="Read a task's state",
        responses={404: {"description": "no such task"}, 503: {"description": "backend down"}},
    )
    return router
