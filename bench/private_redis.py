"""A private redis-server for a benchmark, and pinning it and this process to one CPU.

bench_redis.py, bench_multilevel.py, bench_metrics.py and bench_messaging.py time against a
redis-server they start themselves on a free loopback port (never the shared one at
127.0.0.1:6379), stopped by its pid at the end, also after an error, Ctrl-C or SIGTERM
(harness.run_main turns SIGTERM into the KeyboardInterrupt that runs their ``finally``).
A sequential round trip on this VM costs ~30 µs when client and server share a CPU and
~110-140 µs when they do not, so the scripts pin both to one CPU unless told not to.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server subprocess on a free loopback port, optionally pinned to one CPU."""

    def __init__(self, cpu: int | None) -> None:
        self.cpu = cpu
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="cachemesh-bench-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.version = "unknown"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("redis-server is not on PATH; install it (apt-get install redis).")
        cmd = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            self.dir,
            "--logfile",
            os.path.join(self.dir, "redis.log"),
        ]
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        # A session of its own: Ctrl-C reaches only this script, which then stops the server.
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        import redis

        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.proc.returncode}; see {self.dir}/redis.log"
                )
            try:
                r = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
                self.version = str(r.info("server")["redis_version"])
                r.close()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def affinity(self) -> str:
        if self.proc is None:
            return "not started"
        try:
            return repr(sorted(os.sched_getaffinity(self.proc.pid)))
        except OSError:
            return "unknown"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def pin_self(cpu: int) -> None:
    """Pin this process (all its threads, and the threads it starts later) to `cpu`."""
    subprocess.run(
        ["taskset", "-a", "-p", "-c", str(cpu), str(os.getpid())],
        check=True,
        capture_output=True,
    )
    if os.sched_getaffinity(0) != {cpu}:
        raise RuntimeError(f"taskset did not pin this process to CPU {cpu}")


def add_pin_options(p: argparse.ArgumentParser, cpu_option: bool = True) -> None:
    """--no-pin, and (with `cpu_option`) --cpu C."""
    p.add_argument("--no-pin", action="store_true", help="do not pin this process and redis-server")
    if cpu_option:
        p.add_argument(
            "--cpu",
            type=int,
            default=None,
            help="the CPU both are pinned to (default: the highest CPU this process may use)",
        )


def chosen_cpu(p: argparse.ArgumentParser, args: argparse.Namespace) -> int | None:
    """The CPU to pin to: None with --no-pin, else --cpu or the highest allowed CPU."""
    allowed = sorted(os.sched_getaffinity(0))
    if args.no_pin:
        return None
    cpu = getattr(args, "cpu", None)
    if cpu is None:
        return allowed[-1]
    if cpu not in allowed:
        p.error(f"--cpu {cpu}: this process may only use CPUs {allowed}")
    return int(cpu)
