"""A throwaway ``redis-server`` for the lock fault tests: started on a free loopback port,
frozen (SIGSTOP), resumed (SIGCONT) and killed by its own pid, never by name."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process this test owns."""

    def __init__(self, workdir: Path, *extra: str, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:  # pragma: no cover - the environment installs it
            raise RuntimeError("redis-server is not on PATH")
        self.password = password
        self.workdir = workdir
        for _ in range(5):
            self.port = free_port()
            args = [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--logfile",
                str(workdir / f"redis-{self.port}.log"),
                *extra,
            ]
            if password is not None:
                args += ["--requirepass", password]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
            try:
                if self._wait_ready():
                    return
            except BaseException:
                self.kill()
                raise
            self.kill()
        raise RuntimeError(f"redis-server did not start; see {workdir}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, **kwargs: Any) -> redis.Redis:
        settings: dict[str, Any] = {"socket_timeout": 5, "socket_connect_timeout": 5, **kwargs}
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **settings)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with self.client(socket_timeout=0.5, socket_connect_timeout=0.5) as client:
                    if client.ping():
                        return True
            except redis.RedisError:
                time.sleep(0.05)
        return False

    def stop(self) -> None:
        """Freeze the server: connections stay open, nothing is answered."""
        os.kill(self.pid, signal.SIGSTOP)

    def cont(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(10)
