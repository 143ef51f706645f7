"""cachemesh-notification-router: the guide's notification router and its two filters.

Registers the router ``notification`` and the filters ``priority`` and ``user-type``
through the ``cachemesh`` hooks, so a config can name them; the classes are also used
directly: ``MessageQueue(..., router=NotificationRouter(), filters=[PriorityFilter()])``.
"""

from __future__ import annotations

from cachemesh import hookimpl
from cachemesh.messaging import MessageFilter, MessageRouter

from .filters import (
    FieldFilter,
    FieldFilterOptions,
    PriorityFilter,
    PriorityFilterOptions,
    UserTypeFilter,
    UserTypeFilterOptions,
)
from .router import SEED_ROUTES, Decision, NotificationRouter, NotificationRouterOptions

__all__ = [
    "SEED_ROUTES",
    "Decision",
    "FieldFilter",
    "FieldFilterOptions",
    "NotificationRouter",
    "NotificationRouterOptions",
    "PriorityFilter",
    "PriorityFilterOptions",
    "UserTypeFilter",
    "UserTypeFilterOptions",
]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_routers() -> list[type[MessageRouter]]:
    return [NotificationRouter]


@hookimpl
def cachemesh_register_filters() -> list[type[MessageFilter]]:
    return [PriorityFilter, UserTypeFilter]
