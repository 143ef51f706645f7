"""The FastAPI router (extra [fastapi]) against the real worker, and its failure answers."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import redis
from cachemesh_celery_tasks import CeleryManager
from cachemesh_celery_tasks.http import SendEmailRequest, TaskEndpoint, task_router
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kombu.exceptions import OperationalError
from pydantic import BaseModel, Field

DOWN = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class ProgressRequest(BaseModel):
    steps: int = Field(ge=1, le=20)
    gate: str = Field(min_length=1)  # the Redis key that lets the task past step 1


def _client(source: Any, send_email: Any = None, **kwargs: Any) -> TestClient:
    api = FastAPI()
    api.include_router(task_router(source, send_email, **kwargs))
    return TestClient(api)


@pytest.fixture(scope="module")
def client(worker: Any) -> TestClient:
    gated = TaskEndpoint("gated-progress", worker.gated_progress, ProgressRequest)
    return _client(worker.manager, worker.send_email, endpoints=[gated])


def _poll(client: TestClient, task_id: str, states: set[str], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/tasks/task-status/{task_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["state"] in states or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


@pytest.mark.redis
def test_send_email_is_queued_and_runs(client: TestClient) -> None:
    response = client.post(
        "/tasks/send-email", json={"to": "ana@example.com", "subject": "Hi", "body": "Hello"}
    )
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued" and set(queued) == {"task_id", "status"}
    done = _poll(client, queued["task_id"], {"SUCCESS", "FAILURE"})
    assert done["state"] == "SUCCESS", done
    assert done["result"] == {"to": "ana@example.com", "subject": "Hi", "chars": 5}


@pytest.mark.redis
def test_progress_shows_current_total_status(client: TestClient, worker: Any) -> None:
    gate = f"{worker.SESSION}:gate-{uuid.uuid4().hex[:8]}"  # conftest deletes it
    redis_client = redis.Redis.from_url(worker.REDIS_URL)
    try:
        response = client.post("/tasks/gated-progress", json={"steps": 4, "gate": gate})
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]
        try:  # the task holds at step 1 until the gate opens: PROGRESS cannot be missed
            running = _poll(client, task_id, {"PROGRESS"})
        finally:
            redis_client.set(gate, 1, ex=600)
    finally:
        redis_client.close()
    assert running["state"] == "PROGRESS", running
    assert (running["current"], running["total"], running["status"]) == (1, 4, "step 1")
    assert _poll(client, task_id, {"SUCCESS"})["result"] == "done"


@pytest.mark.redis
def test_a_failed_task_answers_its_error_without_the_traceback(client: TestClient) -> None:
    response = client.post("/tasks/send-email", json={"to": "bo@invalid.example", "subject": "x"})
    failed = _poll(client, response.json()["task_id"], {"FAILURE", "SUCCESS"})
    assert failed["state"] == "FAILURE"
    assert failed["error"] == "PermanentError: no mail server for 'bo@invalid.example'"
    assert failed["traceback"] is None  # code paths are not shown to callers by default


@pytest.mark.redis
def test_an_unknown_id_is_404(client: TestClient) -> None:
    response = client.get("/tasks/task-status/0000-never-sent")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        "no task with id '0000-never-sent': it was never sent, or its record expired"
    )


@pytest.mark.redis
@pytest.mark.parametrize(
    ("body", "field", "text"),
    [
        ({"subject": "Hi"}, "to", "Field required"),
        ({"to": "not-an-address", "subject": "Hi"}, "to", "must be an email address"),
        ({"to": "a@example.com", "subject": ""}, "subject", "at least 1 character"),
        ({"to": "a@example.com", "subject": "Hi", "cc": "x"}, "cc", "Extra inputs"),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, text: str
) -> None:
    response = client.post("/tasks/send-email", json=body)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert any(e["loc"] == ["body", field] and text in e["msg"] for e in errors), errors


@pytest.mark.redis
def test_a_bad_task_id_is_422(client: TestClient) -> None:
    assert client.get("/tasks/task-status/" + "x" * 256).status_code == 422
    assert client.get("/tasks/task-status/a%20b").status_code == 422


def test_an_unreachable_broker_is_503_and_leaves_no_marker(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # One connection attempt, no publish retry: Celery's defaults retry for about 6 s.
    fail_fast = {"max_retries": 1, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
    manager = CeleryManager(
        DOWN, redis_url, task_publish_retry=False, broker_transport_options=fail_fast
    )
    app = manager.create_app()

    @app.task(name="cmhttp.send_email")
    def send_email(to: str, subject: str, body: str = "") -> None:
        return None

    client = _client(manager, send_email)
    response = client.post("/tasks/send-email", json={"to": "a@example.com", "subject": "Hi"})
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert (
        detail
        == "could not queue cmhttp.send_email: the task broker did not answer; try again later"
    )
    assert "could not queue cmhttp.send_email" in caplog.text  # the cause goes to the log
    # The id reserved for the failed send was forgotten: it does not read PENDING forever.
    with pytest.raises(OperationalError):
        send_email.apply_async(kwargs={"to": "a@example.com", "subject": "Hi"}, task_id="cm-lost")
    assert manager.task_status("cm-lost").state == "UNKNOWN"


def test_an_unreachable_result_backend_is_503() -> None:
    manager = CeleryManager("memory://", DOWN)
    response = _client(manager).get("/tasks/task-status/some-id")
    assert response.status_code == 503
    assert "the result backend did not answer" in response.json()["detail"]


def test_a_plain_celery_app_works_without_unknown() -> None:
    from celery import Celery

    app = Celery("plain", broker="memory://", backend="cache+memory://", set_as_current=False)
    response = _client(app).get("/tasks/task-status/never-sent")
    # A plain app leaves no "sent" markers, so it cannot tell UNKNOWN from PENDING.
    assert response.status_code == 200 and response.json()["state"] == "PENDING"


def test_the_router_is_generic_and_checks_its_arguments() -> None:
    manager = CeleryManager("memory://", "cache+memory://")
    app = manager.create_app()

    @app.task(name="cmhttp.resize")
    def resize(image: str, width: int) -> str:
        return image

    class Resize(BaseModel):
        image: str
        width: int = Field(gt=0)

    endpoint = TaskEndpoint("resize", resize, Resize, options={"queue": "images"})
    client = _client(manager, endpoints=[endpoint], prefix="/jobs", status_path="/{task_id}")
    response = client.post("/jobs/resize", json={"image": "a.png", "width": 64})
    assert response.status_code == 202
    assert client.get(f"/jobs/{response.json()['task_id']}").json()["state"] == "PENDING"
    assert client.post("/jobs/resize", json={"image": "a.png", "width": 0}).status_code == 422
    assert "/jobs/send-email" not in client.app.openapi()["paths"]  # type: ignore[attr-defined]

    with pytest.raises(ValueError, match="one plain segment"):
        TaskEndpoint("a/b", resize, Resize)
    with pytest.raises(TypeError, match="Celery task"):
        TaskEndpoint("x", print, Resize)
    with pytest.raises(TypeError, match="pydantic"):
        TaskEndpoint("x", resize, dict)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="share the path"):
        task_router(manager, resize, endpoints=[TaskEndpoint("send-email", resize, Resize)])
    with pytest.raises(ValueError, match="task_id"):
        task_router(manager, status_path="/status")
    with pytest.raises(TypeError, match=r"CeleryManager or a celery\.Celery app"):
        task_router(object())


def test_the_spec_names_and_the_request_model() -> None:
    manager = CeleryManager("memory://", "cache+memory://")
    app = manager.create_app()

    @app.task(name="cmhttp.send_email2")
    def send_email(to: str, subject: str, body: str = "") -> None:
        return None

    client = _client(manager, send_email)
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    assert set(paths) == {"/tasks/send-email", "/tasks/task-status/{task_id}"}
    assert SendEmailRequest(to="a@b.example", subject="s").body == ""
