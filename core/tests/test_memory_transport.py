"""The built-in memory transport passes the transport conformance suite."""

from __future__ import annotations

from cachemesh.testing import TransportConformance


class TestMemoryTransport(TransportConformance):
    transport = "memory"
    url = "memory://"
