"""What a cache does when its backend fails: the decisions `cachemesh_on_backend_error` returns."""

from __future__ import annotations

import enum


class ErrorDecision(str, enum.Enum):
    """The answer to a failed backend operation.

    ``RAISE`` re-raises the typed `BackendError`; ``MISS`` answers a read as a miss (and
    a write as not done, silently); ``IGNORE`` is ``MISS`` under another name for writes.
    """

    RAISE = "raise"
    MISS = "miss"
    IGNORE = "ignore"
