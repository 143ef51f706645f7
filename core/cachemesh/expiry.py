"""When a cached result expires, and what is stored to know it later.

A `cache_result` entry has two deadlines. It is *fresh* for ``timeout`` seconds (less a
random jitter, so keys written together do not all expire together: the avalanche guard),
and it stays in the backend for a further ``stale_while_revalidate`` / ``stale_if_error``
window, during which it may be served while a new value is loaded. The backend's TTL is
the second deadline; the first one, and the time the last load took (what XFetch scales
its early refresh by), travel with the value in a small envelope. Every process reads the
same wall-clock deadline, so they agree on when an entry went stale.

Entries that need neither deadline (no stale window, no early refresh) are stored bare,
so ``cache.get(fn.cache_key(...))`` reads the plain value.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from .errors import ConfigError

#: First item of a stored envelope: ``[ENVELOPE_TAG, value, fresh_until, load_seconds]``.
ENVELOPE_TAG = "__cachemesh_entry_v1__"


def _seconds_or_none(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{what}={value!r} is not valid: give seconds > 0, or None.")
    return float(value)


def _jitter(value: Any) -> tuple[float, float]:
    """(fraction, seconds): a float in [0, 1) is a fraction of the TTL, a timedelta is
    absolute. A bare number >= 1 is refused: 1 would mean "up to the whole TTL" as a
    fraction and "one second" as seconds, and a guess either way is a silent bug."""
    if value is None:
        return 0.0, 0.0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
        if seconds < 0:
            raise ConfigError(f"jitter={value!r}: an absolute jitter must not be negative.")
        return 0.0, seconds
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(
            f"jitter={value!r} is not valid: give a fraction of the TTL in [0, 1) (0.1 = up "
            "to a tenth shorter), or a datetime.timedelta for an absolute spread "
            "(timedelta(seconds=30))."
        )
    return float(value), 0.0


@dataclass(frozen=True)
class Expiry:
    """How long a result is fresh and how long it may be served stale (one per function)."""

    #: Fresh for this many seconds; None means the cache's CACHE_DEFAULT_TIMEOUT, and
    #: math.inf means until deleted.
    timeout: float | None
    #: Jitter as a fraction of the TTL, and as absolute seconds (one of them is 0).
    jitter_fraction: float = 0.0
    jitter_seconds: float = 0.0
    #: Fresh lifetime of a None result ("known absent"), when it differs from `timeout`.
    negative_ttl: float | None = None
    #: After going stale, serve the old value at once and reload in the background.
    stale_while_revalidate: float = 0.0
    #: After going stale, serve the old value when the loader raises.
    stale_if_error: float = 0.0
    #: XFetch: refresh early, with a probability that grows near the deadline.
    early_refresh: bool = False
    #: XFetch's beta: > 1 refreshes earlier, < 1 later.
    beta: float = 1.0

    @classmethod
    def build(
        cls,
        *,
        timeout: Any,
        jitter: Any,
        negative_ttl: Any,
        stale_while_revalidate: Any,
        stale_if_error: Any,
        early_refresh: bool,
        beta: Any,
    ) -> Expiry:
        if timeout is not None and timeout != math.inf:
            timeout = _seconds_or_none(timeout, "timeout")
        fraction, seconds = _jitter(jitter)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta > 0:
            raise ConfigError(f"beta={beta!r} is not valid: give a number > 0 (1.0 is XFetch's).")
        return cls(
            timeout=timeout,
            jitter_fraction=fraction,
            jitter_seconds=seconds,
            negative_ttl=_seconds_or_none(negative_ttl, "negative_ttl"),
            stale_while_revalidate=_seconds_or_none(
                stale_while_revalidate, "stale_while_revalidate"
            )
            or 0.0,
            stale_if_error=_seconds_or_none(stale_if_error, "stale_if_error") or 0.0,
            early_refresh=bool(early_refresh),
            beta=float(beta),
        )

    @property
    def stale_window(self) -> float:
        return max(self.stale_while_revalidate, self.stale_if_error)

    @property
    def enveloped(self) -> bool:
        """Whether entries carry their deadline and load time (else they are stored bare)."""
        return self.early_refresh or self.stale_window > 0

    def fresh_ttl(self, value: Any, default_timeout: float) -> float:
        """Seconds the entry for `value` stays fresh: the timeout (or the negative TTL for
        None) less a random jitter; never longer than the timeout."""
        if value is None and self.negative_ttl is not None:
            ttl = self.negative_ttl
        else:
            ttl = default_timeout if self.timeout is None else self.timeout
        if math.isinf(ttl):
            return ttl
        spread = ttl * self.jitter_fraction + self.jitter_seconds
        if spread:
            ttl -= random.uniform(0, min(spread, ttl * 0.99))
        return ttl

    def store(self, value: Any, fresh_ttl: float, load_seconds: float) -> tuple[Any, float]:
        """What to write and for how long (the backend TTL in seconds, math.inf = none)."""
        if not self.enveloped:
            return value, fresh_ttl
        if math.isinf(fresh_ttl):
            return [ENVELOPE_TAG, value, None, load_seconds], fresh_ttl
        fresh_until = time.time() + fresh_ttl
        return [ENVELOPE_TAG, value, fresh_until, load_seconds], fresh_ttl + self.stale_window

    def read(self, stored: Any) -> Entry | None:
        """The entry in a stored value, or None when it is not one of ours (a miss)."""
        if not self.enveloped:
            return Entry(stored, None, 0.0)
        if type(stored) is list and len(stored) == 4 and stored[0] == ENVELOPE_TAG:
            _, value, fresh_until, load_seconds = stored
            if (fresh_until is None or isinstance(fresh_until, (int, float))) and isinstance(
                load_seconds, (int, float)
            ):
                return Entry(value, fresh_until, float(load_seconds))
        return None


@dataclass(frozen=True)
class Entry:
    """A stored result: the value, when it stops being fresh (epoch seconds, None for
    never), and how long the load that produced it took."""

    value: Any
    fresh_until: float | None
    load_seconds: float

    def age_state(self, expiry: Expiry, now: float) -> str:
        """``"fresh"``, ``"refresh"`` (fresh, but XFetch says reload now), ``"revalidate"``
        (stale, serve and reload in the background), ``"stale"`` (only for errors) or
        ``"expired"``."""
        until = self.fresh_until
        if until is None:
            return "fresh"
        if now < until:
            if expiry.early_refresh and self._xfetch(expiry.beta, now, until):
                return "refresh"
            return "fresh"
        if now < until + expiry.stale_while_revalidate:
            return "revalidate"
        if now < until + expiry.stale_if_error:
            return "stale"
        return "expired"

    def _xfetch(self, beta: float, now: float, until: float) -> bool:
        """Vattani, Chierichetti, Lowenstein (VLDB 2015): reload when
        ``now - delta * beta * ln(U) >= expiry``, U uniform in (0, 1]. Slow loads and a
        near deadline make an early reload likely, and only a few callers draw it."""
        if self.load_seconds <= 0:
            return False
        return now - self.load_seconds * beta * math.log(1.0 - random.random()) >= until
