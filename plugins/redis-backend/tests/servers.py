"""Real redis-server processes for the tests: standalone, a 3-master Cluster, Sentinel.

Every server runs on a free loopback port (found by binding 127.0.0.1:0) with its files in
a temporary directory, and is stopped by its pid: SIGCONT (it may be SIGSTOPped), SIGTERM,
then SIGKILL if it does not exit. A module-level registry remembers every process started,
so a fixture's teardown and an ``atexit`` safety net can stop what is left even when a test
fails half-way; on Linux the servers also get ``PR_SET_PDEATHSIG`` so that they die with the
test process if it is killed outright.

Nothing here touches the shared Redis on 6379, and no server is ever flushed: each one is
started for the tests and thrown away.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from cachemesh import Cache, CacheConfig, SyncCache
from cachemesh.plugins import get_registry, new_plugin_manager
from redis.backoff import NoBackoff
from redis.retry import Retry

REDIS_SERVER = shutil.which("redis-server") or "redis-server"
REDIS_CLI = shutil.which("redis-cli") or "redis-cli"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

#: Every process started here and not yet stopped, by pid (teardown's safety net).
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick for 127.0.0.1:0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections for as long as the block runs.

    A port from `free_port` is free only at that instant: other suites start servers on
    free ports at the same time, and one of them may take it before a test connects,
    turning "nothing listens here" into a live server. Keeping the port bound without
    listening makes the kernel refuse every connection (RST) and lets nobody else bind it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux") or sys.version_info >= (3, 12):
        return None  # 3.12+ warns about preexec_fn in a threaded process
    try:
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


#: Resolved once, in the parent: the child only calls it (no dlopen after fork).
_PRCTL = _load_prctl()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """Linux: the kernel SIGKILLs the server if the test process dies without teardown."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def stop_pid(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """Stop one process we started, by its pid, and reap it. Safe to call twice."""
    pid = proc.pid
    try:
        if proc.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                proc.wait(timeout)
        else:
            proc.wait()
    finally:
        _RUNNING.pop(pid, None)


def stop_all() -> None:
    """Stop every process still registered (atexit and session-end safety net)."""
    for proc in list(_RUNNING.values()):
        stop_pid(proc)


atexit.register(stop_all)


def running_pids() -> list[int]:
    return sorted(_RUNNING)


#: Measured figures (name, text) of this run, printed in the terminal summary.
FIGURES: list[tuple[str, str]] = []


def _raw_ping(connect: Callable[[], socket.socket]) -> bool:
    """True when something answers PING with a RESP reply (+PONG, -NOAUTH, -LOADING...)."""
    try:
        with connect() as sock:
            sock.settimeout(0.5)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-") and not reply.startswith(b"-LOADING")


@dataclass
class TLSFiles:
    """A throw-away CA and a server certificate for ``localhost`` (no IP address SAN)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path


@dataclass
class RedisServer:
    """One redis-server (or sentinel) process we own."""

    name: str
    workdir: Path
    port: int = 0
    unixsocket: Path | None = None
    tls_port: int = 0
    tls: TLSFiles | None = None
    password: str | None = None
    extra: Sequence[str] = ()
    config_file: Path | None = None
    sentinel: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def logfile(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        cmd = [REDIS_SERVER]
        if self.config_file is not None:
            cmd.append(str(self.config_file))
        if self.sentinel:
            cmd.append("--sentinel")
        cmd += ["--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no"]
        cmd += ["--dir", str(self.workdir), "--logfile", str(self.logfile)]
        if not self.sentinel:
            cmd += ["--save", "", "--appendonly", "no", "--enable-debug-command", "local"]
            cmd += ["--pidfile", str(self.workdir / f"{self.name}.pid")]
        if self.unixsocket is not None:
            cmd += ["--unixsocket", str(self.unixsocket), "--unixsocketperm", "700"]
        if self.tls is not None:
            cmd += ["--tls-port", str(self.tls_port)]
            cmd += ["--tls-cert-file", str(self.tls.server_cert)]
            cmd += ["--tls-key-file", str(self.tls.server_key)]
            cmd += ["--tls-ca-cert-file", str(self.tls.ca_cert)]
            cmd += ["--tls-auth-clients", "no"]
        if self.password is not None:
            cmd += ["--requirepass", self.password]
        cmd += list(self.extra)
        return cmd

    # --- life cycle -------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if _PRCTL is not None else None,
        )
        _RUNNING[self.proc.pid] = self.proc
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                stop_pid(self.proc)
                raise RuntimeError(f"{self.name} exited with {code}: {self.log_tail()}")
            if self.answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer PING in {timeout}s: {self.log_tail()}")

    def answers(self) -> bool:
        if self.port:
            return _raw_ping(lambda: socket.create_connection(("127.0.0.1", self.port), 0.5))
        if self.unixsocket is not None:

            def unix() -> socket.socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(0.5)
                    sock.connect(str(self.unixsocket))
                except OSError:
                    sock.close()
                    raise
                return sock

            return _raw_ping(unix)
        if self.tls is not None:
            context = ssl.create_default_context(cafile=str(self.tls.ca_cert))

            def tls() -> socket.socket:
                raw = socket.create_connection(("127.0.0.1", self.tls_port), 0.5)
                try:
                    return context.wrap_socket(raw, server_hostname="localhost")
                except OSError:
                    raw.close()
                    raise

            return _raw_ping(tls)
        return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)

    def kill(self) -> None:
        """SIGKILL: a crash, no shutdown work at all."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        _RUNNING.pop(self.proc.pid, None)

    def pause(self) -> None:
        """SIGSTOP: the server hangs; the kernel still accepts connections for it."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def shutdown_nosave(self) -> None:
        """SHUTDOWN NOSAVE from a client, then reap: the port refuses connections."""
        with contextlib.suppress(redis.ConnectionError), self.admin() as client:
            client.shutdown(nosave=True)
        assert self.proc is not None
        self.proc.wait(STOP_TIMEOUT)
        _RUNNING.pop(self.proc.pid, None)

    def restart(self) -> RedisServer:
        """Start again with the same command line (same port, same files)."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    # --- talking to it ----------------------------------------------------------------
    def admin(self, **kwargs: Any) -> redis.Redis:
        """A plain redis-py client for set-up and checks (short timeouts, no retries)."""
        kwargs.setdefault("socket_timeout", 5)
        kwargs.setdefault("socket_connect_timeout", 2)
        kwargs.setdefault("password", self.password)
        kwargs.setdefault("decode_responses", True)
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))  # redis-py 8 retries for seconds
        if self.port:
            return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)
        assert self.unixsocket is not None
        return redis.Redis(unix_socket_path=str(self.unixsocket), **kwargs)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def start_server(
    workdir: Path,
    name: str = "redis",
    *,
    retries: int = 3,
    tcp: bool = True,
    **kwargs: Any,
) -> RedisServer:
    """Start a standalone server on a free port (a new port if another process took it)."""
    last: Exception | None = None
    for _ in range(retries):
        server = RedisServer(name=name, workdir=workdir / name, **kwargs)
        if tcp:
            server.port = free_port()
        if server.tls is not None:
            server.tls_port = free_port()
        try:
            return server.start()
        except RuntimeError as exc:  # most likely a port race with another process
            last = exc
    raise RuntimeError(f"could not start {name}: {last}")


# --- caches on these servers ----------------------------------------------------------------


def redis_config(
    options: dict[str, Any] | None = None, *, prefix: str | None = None, **settings: Any
) -> CacheConfig:
    """A config for the ``redis`` backend with a key prefix of its own."""
    return CacheConfig(
        CACHE_BACKEND="redis",
        CACHE_BACKEND_OPTIONS=options or {},
        CACHE_KEY_PREFIX=prefix or f"t{uuid.uuid4().hex[:12]}",
        **settings,
    )


def sync_cache(config: CacheConfig, **kwargs: Any) -> SyncCache:
    """A `SyncCache` built through a plugin manager that loads the installed entry points
    (the test kit makes managers hermetic otherwise)."""
    pm = new_plugin_manager(load_entrypoints=True)
    return SyncCache(config, plugin_manager=pm, registry=get_registry(pm), **kwargs)


def async_cache(config: CacheConfig, **kwargs: Any) -> Cache:
    pm = new_plugin_manager(load_entrypoints=True)
    return Cache(config, plugin_manager=pm, registry=get_registry(pm), **kwargs)


# --- Cluster -----------------------------------------------------------------------------


@dataclass
class RedisCluster:
    """Three masters, no replicas, all 16384 slots covered."""

    servers: list[RedisServer]

    @property
    def nodes(self) -> list[str]:
        return [s.address for s in self.servers]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def start_cluster(workdir: Path, masters: int = 3) -> RedisCluster:
    servers: list[RedisServer] = []
    cluster = RedisCluster(servers)
    try:
        for i in range(masters):
            bus = free_port()
            servers.append(
                start_server(
                    workdir,
                    f"cluster{i}",
                    extra=[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        f"nodes-{i}.conf",
                        "--cluster-node-timeout",
                        "2000",
                        "--cluster-port",
                        str(bus),
                    ],
                )
            )
        create = ["--cluster", "create", *cluster.nodes, "--cluster-replicas", "0"]
        subprocess.run(
            [REDIS_CLI, *create, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 20
        while True:
            states = []
            for server in servers:
                with server.admin() as client:
                    info = client.cluster("info")
                    states.append(
                        info.get("cluster_state") == "ok"
                        and int(info.get("cluster_known_nodes", 0)) == masters
                    )
            if all(states):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not reach cluster_state:ok within 20s")
            time.sleep(0.1)
    except BaseException:
        cluster.stop()
        raise
    return cluster


# --- Sentinel ----------------------------------------------------------------------------


@dataclass
class SentinelSetup:
    """A master, one replica and three sentinels (quorum 2) watching `service_name`."""

    master: RedisServer
    replica: RedisServer
    sentinels: list[RedisServer]
    service_name: str = "mymaster"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 3000

    @property
    def sentinel_addresses(self) -> list[str]:
        return [s.address for s in self.sentinels]

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()

    def master_address(self) -> tuple[str, int]:
        """What the sentinels currently report as the master."""
        for sentinel in self.sentinels:
            with contextlib.suppress(redis.RedisError), sentinel.admin() as client:
                host, port = client.sentinel_get_master_addr_by_name(self.service_name)
                return str(host), int(port)
        raise RuntimeError("no sentinel answered")

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Until every sentinel knows the replica and both other sentinels, and the replica
        is in sync: before that a failover cannot be authorized."""
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            with self.replica.admin() as client:
                ok &= client.info("replication").get("master_link_status") == "up"
            for sentinel in self.sentinels:
                with sentinel.admin() as client:
                    state = client.sentinel_master(self.service_name)
                    ok &= int(state.get("num-other-sentinels", 0)) == len(self.sentinels) - 1
                    ok &= int(state.get("num-slaves", 0)) == 1
            if ok:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Sentinel set-up was not ready within {timeout}s")
            time.sleep(0.1)


def _sentinel_config(
    path: Path, master_port: int, name: str, down_after_ms: int, failover_ms: int
) -> None:
    path.write_text(
        "\n".join(
            [
                "sentinel resolve-hostnames no",
                f"sentinel monitor {name} 127.0.0.1 {master_port} 2",
                f"sentinel down-after-milliseconds {name} {down_after_ms}",
                f"sentinel failover-timeout {name} {failover_ms}",
                f"sentinel parallel-syncs {name} 1",
                "",
            ]
        )
    )


def start_sentinel_setup(
    workdir: Path,
    service_name: str = "mymaster",
    down_after_ms: int = 1000,
    failover_timeout_ms: int = 3000,
) -> SentinelSetup:
    started: list[RedisServer] = []
    try:
        master = start_server(workdir, "master")
        started.append(master)
        replica = start_server(
            workdir, "replica", extra=["--replicaof", "127.0.0.1", str(master.port)]
        )
        started.append(replica)
        sentinels = []
        for i in range(3):
            sdir = workdir / f"sentinel{i}"
            sdir.mkdir(parents=True, exist_ok=True)
            conf = sdir / "sentinel.conf"
            _sentinel_config(conf, master.port, service_name, down_after_ms, failover_timeout_ms)
            sentinel = RedisServer(
                name=f"sentinel{i}", workdir=sdir, config_file=conf, sentinel=True
            )
            for attempt in range(3):
                sentinel.port = free_port()
                try:
                    sentinel.start()
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
            started.append(sentinel)
            sentinels.append(sentinel)
        setup = SentinelSetup(
            master, replica, sentinels, service_name, down_after_ms, failover_timeout_ms
        )
        setup.wait_ready()
    except BaseException:
        for server in reversed(started):
            server.stop()
        raise
    return setup


# --- TLS ---------------------------------------------------------------------------------


def tls_unavailable_reason() -> str | None:
    """Why a TLS test cannot run here (None when it can be tried)."""
    if shutil.which("openssl") is None:
        return "the openssl CLI is not installed"
    if shutil.which(REDIS_SERVER) is None:
        return "redis-server is not installed"
    return None


def make_tls_files(directory: Path) -> TLSFiles:
    """A CA, a server key/cert for ``localhost`` signed by it, and an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    for ca in ("ca", "other-ca"):
        openssl("genrsa", "-out", str(directory / f"{ca}.key"), "2048")
        openssl(
            "req", "-x509", "-new", "-nodes", "-sha256", "-days", "2",
            "-key", str(directory / f"{ca}.key"),
            "-subj", f"/CN=cachemesh test {ca}",
            "-out", str(directory / f"{ca}.crt"),
        )  # fmt: skip
    openssl("genrsa", "-out", str(directory / "server.key"), "2048")
    openssl(
        "req", "-new", "-sha256", "-key", str(directory / "server.key"),
        "-subj", "/CN=localhost", "-out", str(directory / "server.csr"),
    )  # fmt: skip
    (directory / "san.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-sha256", "-days", "2",
        "-in", str(directory / "server.csr"),
        "-CA", str(directory / "ca.crt"), "-CAkey", str(directory / "ca.key"),
        "-CAcreateserial", "-extfile", str(directory / "san.ext"),
        "-out", str(directory / "server.crt"),
    )  # fmt: skip
    for path in directory.glob("*.key"):
        path.chmod(0o600)
    return TLSFiles(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        other_ca_cert=directory / "other-ca.crt",
    )


@contextlib.contextmanager
def running(server: RedisServer | RedisCluster | SentinelSetup) -> Iterator[Any]:
    """Yield `server` and stop it afterwards, whatever happened in between."""
    try:
        yield server
    finally:
        server.stop()
