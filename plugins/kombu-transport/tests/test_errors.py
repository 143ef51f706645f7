"""A broker that is not there, a bad URL, a refused login, a queue declared differently:
each a typed error that says what to fix, fast, and never shows the password."""

from __future__ import annotations

import socket
import time
import traceback
from collections.abc import Callable

import pytest
from cachemesh.errors import BackendUnavailableError, ConfigError
from cachemesh_kombu_transport import KombuTransport
from kombu.connection import Connection

URL = "amqp://guest:guest@127.0.0.1:5672//"  # the tests' RabbitMQ (conftest.py)

SECRET = "s3cret-Pa55"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.no_broker
@pytest.mark.parametrize("call", ["send", "receive", "depth"])
def test_an_unreachable_broker_fails_fast_and_typed(
    call: str, report_figure: Callable[[str, str], None]
) -> None:
    port = _free_port()
    transport = KombuTransport(f"amqp://app:{SECRET}@127.0.0.1:{port}/orders")
    calls: dict[str, Callable[[], object]] = {
        "send": lambda: transport.send("q", b"x"),
        "receive": lambda: transport.receive("q", "c", count=1, block=5, reclaim_after=30),
        "depth": lambda: transport.depth("q"),
    }
    began = time.monotonic()
    with pytest.raises(BackendUnavailableError) as info:
        calls[call]()
    took = time.monotonic() - began
    transport.close()
    assert took < 2.0
    text = str(info.value)
    assert SECRET not in text and SECRET not in repr(info.value)
    assert f"app@127.0.0.1:{port}" in text and "unreachable" in text
    assert SECRET not in "".join(traceback.format_exception(info.value))
    if call == "send":
        report_figure("unreachable broker", f"BackendUnavailableError after {took * 1000:.0f} ms")


@pytest.mark.no_broker
def test_a_silent_host_fails_within_the_connect_timeout() -> None:
    """A listener that never answers the AMQP handshake (a wedged broker, a firewall that
    accepts): the error comes after connect_timeout, not never."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        url = f"amqp://guest:guest@127.0.0.1:{port}//"
        transport = KombuTransport(url, {"connect_timeout": 0.5})
        began = time.monotonic()
        with pytest.raises(BackendUnavailableError, match=r"connect_timeout=0\.5s"):
            transport.send("q", b"x")
        assert time.monotonic() - began < 3.0
        transport.close()


@pytest.mark.no_broker
@pytest.mark.parametrize(
    "url",
    [
        f"amqp://app:{SECRET}@127.0.0.1:notaport//",
        f"redis://app:{SECRET}@127.0.0.1:6379/0",
        "",
    ],
)
def test_a_bad_url_is_a_config_error_before_the_network(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        KombuTransport(url)
    assert SECRET not in str(info.value)


def test_a_refused_login_is_a_config_error() -> None:
    transport = KombuTransport(f"amqp://guest:{SECRET}@127.0.0.1:5672//")
    with pytest.raises(ConfigError, match="password") as info:
        transport.send("q", b"x")
    assert SECRET not in str(info.value)
    transport.close()


def test_a_missing_vhost_is_a_config_error() -> None:
    transport = KombuTransport("amqp://guest:guest@127.0.0.1:5672/no-such-vhost-cm")
    with pytest.raises(ConfigError, match="vhost"):
        transport.send("q", b"x")
    transport.close()


@pytest.mark.no_broker
def test_repr_and_errors_hold_no_url() -> None:
    transport = KombuTransport(f"amqp://app:{SECRET}@127.0.0.1:5672//")
    assert SECRET not in repr(transport) and "5672" not in repr(transport)
    assert repr(transport) == "KombuTransport('amqp')"


def test_a_queue_declared_with_other_arguments_names_the_queue_and_the_fix(
    make_transport: Callable[..., KombuTransport], queue_name: str
) -> None:
    with Connection(URL) as connection:  # someone else's queue: no priority
        connection.default_channel.queue_declare(queue=queue_name, durable=True, auto_delete=False)
    transport = make_transport()
    with pytest.raises(ConfigError) as info:
        transport.send(queue_name, b"x")
    text = str(info.value)
    assert repr(queue_name) in text and "x-max-priority" in text
    assert "delete_queue" in text and "max_priority" in text
    matching = make_transport(max_priority=0)  # declared like the existing queue: works
    matching.send(queue_name, b"x")
    assert matching.depth(queue_name) == 1
    with pytest.raises(ConfigError, match="without priority"):
        matching.send(queue_name, b"x", priority=3)


@pytest.mark.no_broker
def test_options_are_checked() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        KombuTransport(URL, {"queue_type": "stream"})
    with pytest.raises(ValidationError):
        KombuTransport(URL, {"heartbeat": -1})
    with pytest.raises(ValidationError):
        KombuTransport(URL, {"prefetch_count": 10})  # unknown: the option is `prefetch`
    with pytest.raises(ValidationError):
        KombuTransport(URL, {"prefetch": 0})
    with pytest.raises(ValidationError):
        KombuTransport(URL, {"prefetch": 65536})  # AMQP's prefetch count is 16 bits
    assert KombuTransport(URL, {"prefetch": 3}).receive_batch == 3
