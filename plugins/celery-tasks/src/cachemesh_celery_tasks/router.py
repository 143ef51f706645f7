"""The ``celery-routes`` message router: one routing table for Celery tasks and messages.

A service that routes tasks with ``CELERY_TASK_ROUTES`` (``{"billing.*": "billing"}``)
usually wants its messages routed by the same rules. This router reads that table format
with Celery's own matcher (``celery.app.routes.MapRoute``: exact names first, then glob
patterns in order; a value is a queue name or ``{"queue": ...}``), so both agree.
"""

from __future__ import annotations

from typing import Any, ClassVar

from cachemesh.messaging import MessageRouter
from celery.app.routes import MapRoute  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field


class CeleryRoutesOptions(BaseModel):
    """``routes`` in ``task_routes`` form; ``default_queue`` for keys nothing matches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    routes: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    default_queue: str = "celery"


class CeleryRoutesRouter(MessageRouter):
    """Routes a message's routing key as Celery would route a task of that name."""

    name: ClassVar[str] = "celery-routes"
    Options: ClassVar[type[BaseModel]] = CeleryRoutesOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        opts = self.options
        assert isinstance(opts, CeleryRoutesOptions)
        for key, value in opts.routes.items():
            if isinstance(value, dict) and not isinstance(value.get("queue"), str):
                raise ValueError(f"route {key!r}: a dict route needs a string 'queue', got {value}")
        self._match = MapRoute(opts.routes)
        self._default = opts.default_queue

    def route_message(self, routing_key: str, message: Any) -> str:
        route = self._match(routing_key)
        return str(route["queue"]) if route else self._default
