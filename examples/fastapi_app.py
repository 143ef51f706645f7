"""The guide's web service: cached endpoints (SPEC §3) and the task endpoints (SPEC §4).

    pip install fastapi uvicorn
    cd examples && uvicorn fastapi_app:app --port 8000

- ``GET /users/{user_id}``: a profile, cached with `cache_result` in the configured cache
  (memory by default, Redis with CACHEMESH_CONFIG=examples/redis.toml, where every worker
  process of the service shares it);
- ``DELETE /users/{user_id}/cache``: drop that entry after the profile changed;
- ``POST /tasks/send-email`` -> ``{"task_id": ..., "status": "queued"}`` and
  ``GET /tasks/task-status/{task_id}`` -> the task's state (404 for an id never sent), from
  the router of cachemesh-celery-tasks (extra ``[fastapi]``). A worker of `celery_app`
  runs the tasks (example 04 shows how to start one).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cachemesh import cache_result, default_cache
from cachemesh_celery_tasks.http import task_router
from celery_app import manager, send_email
from fastapi import FastAPI

app = FastAPI(title="cachemesh example service")
app.include_router(task_router(manager, send_email))  # POST send-email, GET task-status


@cache_result(timeout=600, key_prefix="api_data")
async def load_profile(user_id: int) -> dict[str, Any]:
    """The slow part (a database, another service), cached by its arguments.

    Cache the loader, not the endpoint: an endpoint's injected arguments (request,
    database session) must not become part of the key.
    """
    await asyncio.sleep(0.05)  # ... the database ...
    return {"id": user_id, "name": f"User {user_id}", "loaded_at": time.time()}


@app.get("/users/{user_id}")
async def get_user(user_id: int) -> dict[str, Any]:
    return await load_profile(user_id)


@app.delete("/users/{user_id}/cache")
async def forget_user(user_id: int) -> dict[str, Any]:
    return {"invalidated": await load_profile.invalidate(user_id)}


@app.get("/cache/stats")
async def cache_stats() -> dict[str, Any]:
    return {
        "backend": default_cache().config.CACHE_BACKEND,
        "loads": load_profile.stats.loads,
        "coalesced": load_profile.stats.coalesced,
    }
