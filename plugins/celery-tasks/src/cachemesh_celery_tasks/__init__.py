"""cachemesh-celery-tasks: `CeleryManager`, task status, `TaskMonitor`, `TaskScheduler`.

``from cachemesh import CeleryManager`` loads this module. The FastAPI endpoints live in
``cachemesh_celery_tasks.http`` (extra ``[fastapi]``), imported only when used. See
``docs/plugins/celery-tasks.md``.
"""

from __future__ import annotations

from typing import Any

from cachemesh import hookimpl
from cachemesh.config import CacheConfig

from .manager import CeleryManager, ManagedTask, logger
from .monitor import InspectReply, TaskMonitor
from .router import CeleryRoutesOptions, CeleryRoutesRouter
from .scheduler import RedisScheduler, ScheduleError, TaskScheduler
from .status import PROGRESS, UNKNOWN, TaskStatus, report_progress

__all__ = [
    "PROGRESS",
    "UNKNOWN",
    "CeleryManager",
    "CeleryRoutesOptions",
    "CeleryRoutesRouter",
    "InspectReply",
    "ManagedTask",
    "RedisScheduler",
    "ScheduleError",
    "TaskMonitor",
    "TaskScheduler",
    "TaskStatus",
    "report_progress",
]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_routers() -> list[type[Any]]:
    return [CeleryRoutesRouter]


@hookimpl
def cachemesh_configure(config: CacheConfig) -> None:
    """Warn early about a half-configured Celery: a broker without a result backend.

    Without a result backend every status lookup fails (Celery's DisabledBackend), which
    otherwise shows up only when the first status request arrives.
    """
    if config.CELERY_BROKER_URL and not config.CELERY_RESULT_BACKEND:
        logger.warning(
            "CELERY_BROKER_URL is set but CELERY_RESULT_BACKEND is not: task status and "
            "results will not be available. Set CELERY_RESULT_BACKEND."
        )
