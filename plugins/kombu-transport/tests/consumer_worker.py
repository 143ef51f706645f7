"""A consumer process for the crash tests: takes one message, says so, and hangs holding it.

    python consumer_worker.py URL QUEUE [OPTIONS_JSON]

Prints ``held <attempts> <payload>`` once it has a delivery it does not settle, then sleeps
until it is killed (the test sends SIGKILL: no close, no ack, no goodbye to RabbitMQ).
"""

from __future__ import annotations

import json
import sys
import time

from cachemesh_kombu_transport import KombuTransport


def main() -> None:
    url, queue = sys.argv[1], sys.argv[2]
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    transport = KombuTransport(url, options)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = transport.receive(queue, "doomed", count=1, block=1.0, reclaim_after=30)
        if got:
            print(f"held {got[0].attempts} {got[0].payload.decode()}", flush=True)
            time.sleep(600)
    print("nothing came", flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
