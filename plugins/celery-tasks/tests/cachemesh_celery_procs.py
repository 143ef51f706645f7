"""Start and stop real ``celery worker`` / ``celery beat`` processes for the tests.

Every process runs one of the test app modules beside this file, logs to a file the test
can read, and is stopped by its own pid (SIGTERM, then SIGKILL), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachemesh.testing import wait_until

HERE = Path(__file__).resolve().parent


def _env() -> dict[str, str]:
    paths = [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


class CeleryProcess:
    """One celery process and its log file."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", *args],
            cwd=HERE,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM (a warm shutdown), SIGKILL if it does not exit within `timeout`."""
        if self.alive:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        return int(self.proc.returncode)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when a machine dies."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._log.close()


def start_worker(
    module: str, queue: str, node: str, log_path: Path, *, loglevel: str = "WARNING"
) -> CeleryProcess:
    """A ``--pool=solo`` worker of `module`'s app consuming `queue`."""
    return CeleryProcess(
        [
            "-A",
            module,
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-Q",
            queue,
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "-n",
            f"{node}@%h",
            f"--loglevel={loglevel}",
        ],
        log_path,
    )


def start_beat(module: str, workdir: Path, name: str, *, loglevel: str = "INFO") -> CeleryProcess:
    """A beat of `module`'s app on `RedisScheduler`, ticking at least once a second."""
    return CeleryProcess(
        [
            "-A",
            module,
            "beat",
            "-S",
            "cachemesh_celery_tasks.scheduler:RedisScheduler",
            "--max-interval",
            "1",
            "-s",
            str(workdir / f"{name}-schedule"),
            f"--loglevel={loglevel}",
        ],
        workdir / f"{name}.log",
    )


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    """The test kit's `wait_until`, polling at a pace meant for log files and Redis reads."""
    return wait_until(predicate, timeout, interval)
