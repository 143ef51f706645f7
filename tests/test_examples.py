"""Every script of examples/ runs, on the in-memory default and on Redis, and says what it should.

Each script runs as a user would run it: a subprocess, with the backend chosen by the
environment alone (nothing for the in-memory default; ``CACHEMESH_CONFIG=examples/redis.toml``
for Redis). One key prefix per test session keeps the examples' keys, Celery queue, control
exchange and beat entries apart from everything else on the shared Redis, and after every
script no key of that prefix may be left behind. The Celery examples get a real worker
(``celery -A celery_app worker``), started once for the session and stopped by pid.

A new examples/*.py fails `test_every_example_is_covered` until it gets a test here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
REDIS_URL = "redis://127.0.0.1:6379/0"  # the server examples/redis.toml names
PREFIX = f"cmex-{uuid.uuid4().hex[:10]}"
ENV_PREFIXES = ("CACHEMESH_", "CACHE_", "REDIS_", "CELERY_", "MESSAGE_")
BACKENDS = ["memory", "redis"]
SCRIPT_TIMEOUT = 120

# Lines each script must print, per backend ({backend}, {prefix} and {config} filled in).
# A string must appear as a whole line's part; "re:" marks a regular expression.
EXPECTED: dict[str, list[str]] = {
    "01_configuration.py": [
        "backend: {backend}",
        "config file: {config}",
        "key prefix: {prefix}, version: 1",
        "keyword arguments win: timezone=Asia/Shanghai",
        "bumped version: 2",
        "password in repr: False, shown as **********",
        "Did you mean 'CACHE_KEY_PREFIX'?",
    ],
    "02_cache_operations.py": [
        "{manager} on the {backend} backend",
        "get user:123 -> {{'name': 'John', 'age': 30}}",
        "exists user:123 -> True",
        "get user:999 -> None",
        "get_many -> [{{'name': 'Ann'}}, None, {{'name': 'Bob'}}]",
        "after delete, exists user:2 -> False",
        "delete_pattern('user:*') removed 2 keys",
        "stored key of 'session:abc': {prefix}:v1:session:abc",
    ],
    "03_cache_result.py": [
        "results stored on the {backend} backend",
        "second call served from the cache: True, loads: 1",
        "after page=2, loads: 2",
        "re:^key: api_data:get_api_data:[0-9a-f]{{32}}$",
        "after invalidate, loads: 3",
        "quote loads within the timeout: 1, after it: 2",
    ],
    "04_celery_tasks.py": [
        "status of an id never sent: UNKNOWN",
        "re:^send_email: .*PROGRESS [1-5]/6 -> .*SUCCESS$",
        "result: {{'to': 'ann@example.com', 'subject': 'Welcome', 'retries': 0}}",
        # Full jitter may pick a countdown of 0: the RETRY state can then pass between two
        # polls. The retry count in the result is what proves the two retries happened.
        "re:^send_email \\(2 timeouts\\): .*SUCCESS$",
        "succeeded after 2 retries",
        "re:^process_order: .*RETRY -> .*SUCCESS$",
        "result: order 7 processed",
        "re:^send_email \\(bad address\\): .*FAILURE$",
        "error: PermanentError: invalid address 'not-an-address'",
    ],
    "05_message_queue.py": [
        "transport: {backend} (delivery {guarantee})",
        "routing key 'user.email' -> queue 'notifications.user.email'",
        "handled user.email: {{'user_id': 1, 'template': 'welcome'}} (attempt 1)",
        "handled notifications.user.email: {{'user_id': 3, 'template': 'reminder'}} (attempt 1)",
        "received 3 messages in order",
    ],
    "06_distributed_lock.py": [
        "locks on the {backend} backend",
        "re:^w[123]: start \\(fencing token 1\\)$",
        "re:^w[123]: start \\(fencing token 3\\)$",
        "no two workers overlapped",
        "manual acquire while another holds it: False",
        "manual acquire once it is released: True",
    ],
    "07_strategies.py": [
        "LRUCache and TTLCache are CacheStrategy: True",
        "LRU loads: ['user 1', 'user 2', 'user 3', 'user 1']",
        "TTL loads: ['rate EUR', 'rate EUR']",
        "multi-level: L1 LRUCache in front of L2 {manager} ({backend})",
        "L1 holds it: True, L2 holds it: True",
        "after an L2 hit, L1 was refilled: True",
    ],
    "08_task_scheduling.py": [
        "static beat entries: ['every-30-seconds', 'nightly-cleanup', 'weekday-mornings']",
        "dynamic entry poll-inbox: examples.cleanup {{'every': 30.0}} args=['inbox']",
        "dynamic entry hourly-sessions: examples.cleanup {{'every': 3600.0}} args=['sessions']",
        "re:^dynamic entry nightly-report: examples.cleanup \\{{'crontab': .*'hour': '2'",
        "refused: a schedule interval must be positive, got -5 seconds",
        "removed poll-inbox: True",
        "removed it again: False",
        "dynamic entries left: ['hourly-sessions', 'nightly-report']",
    ],
    "09_routing_filtering.py": [
        "route user.email -> email_queue",
        "route user.sms -> sms_queue",
        "route user.push -> push_queue",
        "route admin.alert -> admin_queue",
        "route order.created -> default_queue",
        "send ann@example.com: email_queue",
        "send bob@example.com: dropped",
        "send cid@example.com: dropped",
        "PriorityFilter drops the message",
        "email_queue received: ['ann@example.com']",
    ],
    "10_good_practices.py": [
        "on the {backend} backend",
        "keys: user:profile:42, user:permissions:42, session:abc",
        "re:^api key: api:/users:[0-9a-f]+ \\(same for reordered params: True\\)$",
        "versioned get: {{'name': 'Lamp', 'price': 30}}",
        "after invalidate: None (version +1)",
        "fallback: primary has it True, fallback has it True",
        "primary down, get: {{'name': 'Ann'}}",
        "primary down, set stored: True",
        "primary errors counted: 2",
        "monitoring: hits=3 misses=1 hit ratio=75%",
        "re:^average time: get \\d+ µs, set \\d+ µs$",
    ],
    "11_avalanche_penetration.py": [
        "on the {backend} backend",
        "warm_up loaded 20 products, 0 already fresh",
        "re:^TTLs spread over (5[4-9]\\d|600)\\.\\.(5[4-9]\\d|600) s",
        "absent user asked 3 times: 1 database read",
        "its 'known absent' marker lives 30 s",
        "bloom might_contain('42'): True",
        "bloom might_contain('123456'): False",
        "guarded lookups: database reads ['guarded 42'], rejected by the filter 1",
    ],
    "12_celery_monitoring.py": [
        "re:^ping: 1 worker\\(s\\) answered: {prefix}@",
        "active: examples.send_email is running",
        "scheduled: examples.process_order is waiting for its countdown",
        "queue depths: {{'{prefix}-tasks': 0}}",
        "registered: ['examples.cleanup', 'examples.process_order', 'examples.send_email']",
        "final states: SUCCESS, SUCCESS",
        "re:^stats: {prefix}@\\S+ pool=celery.concurrency.thread:TaskPool processed=\\d+$",
    ],
    "celery_app.py": [
        "queue: {prefix}-tasks",
        "tasks: examples.cleanup, examples.process_order, examples.send_email",
    ],
}
#: Scripts that need a worker of examples/celery_app.py.
NEEDS_WORKER = {"04_celery_tasks.py", "12_celery_monitoring.py"}
#: Scripts that use Celery, hence the Redis broker, whatever the cache backend.
NEEDS_BROKER = NEEDS_WORKER | {"08_task_scheduling.py", "celery_app.py"}
#: Tested by their own tests below rather than through EXPECTED.
OWN_TESTS = {"fastapi_app.py"}


def _redis_up() -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


REDIS_UP = _redis_up()


def _env(backend: str, prefix: str = PREFIX) -> dict[str, str]:
    """The environment a user would set: nothing from the developer's shell leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        CACHE_KEY_PREFIX=prefix,
        CELERY_BROKER_URL=REDIS_URL,
        CELERY_RESULT_BACKEND=REDIS_URL,
    )
    if backend == "redis":
        env["CACHEMESH_CONFIG"] = str(EXAMPLES / "redis.toml")
    return env


def _leftover_keys(prefix: str = PREFIX) -> list[str]:
    """Keys the examples' cache, queues and beat entries left under ``{prefix}:``."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000))
    finally:
        client.close()


def _run(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        cwd=cwd,  # a fresh directory: no stray .env or cachemesh.toml
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )


def _check_lines(output: str, expected: list[str], fill: dict[str, str]) -> None:
    lines = output.splitlines()
    for want in expected:
        text = want.format(**fill)
        if text.startswith("re:"):
            pattern = re.compile(text[3:])
            assert any(pattern.search(line) for line in lines), f"no line matches {text!r}"
        else:
            assert any(text in line for line in lines), f"no line contains {text!r}"


def _fill(backend: str) -> dict[str, str]:
    return {
        "backend": backend,
        "prefix": PREFIX,
        "config": str(EXAMPLES / "redis.toml")
        if backend == "redis"
        else "none (the in-memory default)",
        "manager": "RedisManager" if backend == "redis" else "Cache",
        "guarantee": "at-least-once" if backend == "redis" else "at-most-once",
    }


def _cleanup_redis() -> None:
    """Drop whatever this session left: its keys, queue, bindings (results expire)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"{PREFIX}*", f"_kombu.binding*{PREFIX}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        deadlines = "_kombu.binding_deadlines"
        members = client.zrange(deadlines, 0, -1)
        ours = [m for m in members if isinstance(m, bytes) and PREFIX.encode() in m]
        if ours:
            client.zrem(deadlines, *ours)
    finally:
        client.close()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``celery -A celery_app worker`` on this session's queue; stopped by pid.

    The threads pool (not solo) lets the worker answer inspect calls while a task runs,
    which example 12 shows.
    """
    if not REDIS_UP:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    from celery import Celery  # type: ignore[import-untyped]

    log_path = tmp_path_factory.mktemp("examples-worker") / "worker.log"
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"{PREFIX}@%h",
            "--loglevel=WARNING",
        ],
        cwd=EXAMPLES,
        env=_env("memory"),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    pinger = Celery(broker=REDIS_URL, set_as_current=False)
    pinger.conf.control_exchange = f"{PREFIX}-control"  # as celery_app.py sets it
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                err = log_path.read_text(errors="replace")
                pytest.fail(f"celery worker exited with {proc.returncode}: {err[-2000:]}")
            if pinger.control.ping(timeout=0.5):
                break
        else:
            pytest.fail("the examples' celery worker did not answer a ping within 60s")
        yield PREFIX
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()
        pinger.close()
        _cleanup_redis()


@pytest.fixture(scope="module", autouse=True)
def _cleanup_at_end() -> Iterator[None]:
    yield
    if REDIS_UP:
        _cleanup_redis()


def test_every_example_is_covered() -> None:
    """A new example must get expected output here (or its own test), and a README line."""
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts, "examples/ has no scripts"
    tested = set(EXPECTED) | OWN_TESTS
    assert scripts - tested == set(), f"examples without a test: {sorted(scripts - tested)}"
    assert tested - scripts == set(), f"tests of missing examples: {sorted(tested - scripts)}"
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    unlisted = sorted(s for s in scripts if f"`{s}`" not in readme)
    assert not unlisted, f"examples/README.md does not list {unlisted}"
    for target in re.findall(r"\]\(([^)#:]+)\)", readme):  # relative links resolve
        assert (EXAMPLES / target).exists(), f"examples/README.md links to missing {target}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example(script: str, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    if (backend == "redis" or script in NEEDS_BROKER) and not REDIS_UP:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    if script in NEEDS_WORKER:
        request.getfixturevalue("worker")
    result = _run(script, _env(backend), tmp_path)
    assert result.returncode == 0, f"{script} on {backend} failed:\n{result.stderr[-4000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    _check_lines(result.stdout, EXPECTED[script], _fill(backend))
    if REDIS_UP:
        assert _leftover_keys() == [], f"{script} on {backend} left keys behind"


def test_celery_example_without_broker_names_the_setting(tmp_path: Path) -> None:
    env = _env("memory")
    del env["CELERY_BROKER_URL"]
    result = _run("04_celery_tasks.py", env, tmp_path)
    assert result.returncode != 0
    assert "CeleryManager needs a broker" in result.stderr
    assert "CELERY_BROKER_URL" in result.stderr


def test_celery_example_without_worker_says_so(tmp_path: Path) -> None:
    """No worker on this app's queue: a clear message and a failure, not a hang."""
    if not REDIS_UP:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    lonely = f"{PREFIX}-noworker"
    started = time.monotonic()
    result = _run("04_celery_tasks.py", _env("memory", prefix=lonely), tmp_path)
    assert result.returncode == 1
    assert f"no worker answered on queue '{lonely}-tasks'" in result.stderr
    assert "celery -A celery_app worker" in result.stderr
    assert time.monotonic() - started < 30


FASTAPI_DRIVER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from fastapi.testclient import TestClient
import fastapi_app
from cachemesh import default_sync_cache

out = {}
with TestClient(fastapi_app.app) as client:
    first = client.get("/users/7").json()
    second = client.get("/users/7").json()
    out["cached"] = first == second
    out["stats"] = client.get("/cache/stats").json()
    out["invalidated"] = client.delete("/users/7/cache").json()
    out["reloaded"] = client.get("/users/7").json()["loaded_at"] != first["loaded_at"]
    out["loads"] = client.get("/cache/stats").json()["loads"]

    queued = client.post("/tasks/send-email", json={"to": "ann@example.com", "subject": "Hi"})
    out["queued_code"], out["queued"] = queued.status_code, queued.json()
    states, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = client.get("/tasks/task-status/" + out["queued"]["task_id"]).json()
        if not states or states[-1] != answer["state"]:
            states.append(answer["state"])
        if answer["state"] in ("SUCCESS", "FAILURE"):
            out["final"] = answer
            break
        time.sleep(0.05)
    out["states"] = states
    out["unknown_code"] = client.get("/tasks/task-status/no-such-task").status_code
    bad = client.post("/tasks/send-email", json={"to": "not-an-address", "subject": "Hi"})
    out["bad_code"] = bad.status_code
print(json.dumps(out))
default_sync_cache().clear()  # the demo leaves nothing behind
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_fastapi_app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    pytest.importorskip("fastapi")  # the [fastapi] extra of cachemesh-celery-tasks
    pytest.importorskip("httpx")  # TestClient needs it
    request.getfixturevalue("worker")
    result = subprocess.run(
        [sys.executable, "-c", FASTAPI_DRIVER, str(EXAMPLES)],
        cwd=tmp_path,
        env=_env(backend),
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])

    # SPEC §3: the second call is served from the cache; invalidate forces a reload.
    assert out["cached"] is True
    assert out["stats"] == {"backend": backend, "loads": 1, "coalesced": 0}
    assert out["invalidated"] == {"invalidated": True}
    assert out["reloaded"] is True and out["loads"] == 2

    # SPEC §4: queued, then the state from the real worker, with progress on the way.
    assert out["queued_code"] in (200, 202)
    assert out["queued"]["status"] == "queued" and len(out["queued"]["task_id"]) >= 32
    assert out["final"]["state"] == "SUCCESS", out
    assert out["final"]["result"]["to"] == "ann@example.com"
    assert "PROGRESS" in out["states"], out["states"]
    assert out["unknown_code"] == 404
    assert out["bad_code"] == 422  # validated before anything is queued
    assert _leftover_keys() == []
