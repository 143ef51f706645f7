"""A fake clock for the ``ttl`` tests: time moves only when a test says so."""

from __future__ import annotations

import pytest
from cachemesh.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)
