"""The celery-routes router agrees with Celery's task_routes matching."""

from __future__ import annotations

import pytest
from cachemesh_celery_tasks import CeleryManager, CeleryRoutesRouter
from pydantic import ValidationError

ROUTES = {"billing.*": "billing", "user.email": {"queue": "email_queue"}, "a.b": "q_ab"}


def test_routes_like_celery() -> None:
    router = CeleryRoutesRouter({"routes": ROUTES, "default_queue": "default"})
    assert router.route_message("billing.charge", {}) == "billing"
    assert router.route_message("user.email", {}) == "email_queue"
    assert router.route_message("a.b", {}) == "q_ab"
    assert router.route_message("other.x", {}) == "default"
    app = CeleryManager("memory://", "cache+memory://", task_routes=ROUTES).create_app()
    for key in ("billing.charge", "user.email", "a.b"):
        celery_queue = app.amqp.router.route({}, key)["queue"].name
        assert router.route_message(key, {}) == celery_queue


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValidationError):
        CeleryRoutesRouter({"routes": {}, "unknown": 1})
    with pytest.raises(ValueError, match="queue"):
        CeleryRoutesRouter({"routes": {"x": {"exchange": "e"}}})


def test_registered_as_a_router() -> None:
    import cachemesh_celery_tasks
    from cachemesh.plugins import new_plugin_manager
    from cachemesh.registry import ComponentRegistry

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(cachemesh_celery_tasks, name="cachemesh-celery-tasks")
    registry = ComponentRegistry.from_plugin_manager(pm)
    assert registry.resolve("router", "celery-routes") is CeleryRoutesRouter
