"""A circuit breaker around a cache backend: an outage costs one timeout, not one per call.

Without it, every call to a hung store waits for the socket timeout: at 100 calls a second
and a 0.5 s timeout, fifty callers are stuck at any moment. With it, a few consecutive
failures *open* the circuit and every later call fails at once with `CircuitOpenError` (a
`BackendUnavailableError`), which the cache's error policy turns into a miss, a fallback
read or a typed error, in microseconds. After ``reset_timeout`` seconds the circuit goes
*half-open* and lets one probe call through: its success closes the circuit, its failure
opens it again for another ``reset_timeout``.

The state lives in the process (never in the store it protects: a breaker kept in a Redis
that is down cannot open). It is thread-safe and asyncio-safe: every state change happens
under a `threading.Lock` that is never held across an ``await`` or an I/O call.

`BreakerBackend` (breaker_backend.py) runs every call of a backend through a breaker.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import BackendUnavailableError, ConfigError

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "Transition",
]

log = logging.getLogger("cachemesh.breaker")

T = TypeVar("T")

#: How many state changes a breaker remembers in `CircuitBreaker.transitions`.
HISTORY = 100


class CircuitState(str, enum.Enum):
    """Where a breaker stands: calls pass (closed), fail fast (open), or one probes."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitOpenError(BackendUnavailableError):
    """The circuit is open: the backend was not called at all.

    A `BackendUnavailableError`, so everything that handles an unreachable store (the
    ``CACHE_ON_BACKEND_ERROR`` policy, the ``cachemesh_on_backend_error`` hook,
    `CacheWithFallback`, `DistributedLock` failing closed) handles it the same way.
    ``retry_in`` is how many seconds remain before the next probe may run.
    """

    def __init__(self, message: str, *, retry_in: float = 0.0) -> None:
        super().__init__(message)
        self.retry_in = retry_in


@dataclass(frozen=True)
class Transition:
    """One state change: when (the breaker's clock), from what, to what, and why."""

    at: float
    old: CircuitState
    new: CircuitState
    reason: str


def _check_options(failure_threshold: object, reset_timeout: object) -> tuple[int, float]:
    if (
        not isinstance(failure_threshold, int)
        or isinstance(failure_threshold, bool)
        or failure_threshold < 1
    ):
        raise ConfigError(
            f"failure_threshold={failure_threshold!r} is not valid: give the number of "
            "consecutive failures that opens the circuit, an int >= 1 (e.g. 5)."
        )
    if (
        not isinstance(reset_timeout, (int, float))
        or isinstance(reset_timeout, bool)
        or not 0 < reset_timeout < math.inf
    ):
        raise ConfigError(
            f"reset_timeout={reset_timeout!r} is not valid: give the seconds an open circuit "
            "waits before letting one probe through, a finite number > 0 (e.g. 5)."
        )
    return failure_threshold, float(reset_timeout)


class CircuitBreaker:
    """Closed → open after `failure_threshold` consecutive failures; open → half-open after
    `reset_timeout` seconds; half-open lets one probe through, whose success closes the
    circuit and whose failure re-opens it.

    Why consecutive failures and not a failure rate: during an outage every call fails, so
    both trip at once; a store that drops one call in fifty still serves the rest and
    should stay in use. The count is simple to reason about and costs nothing per call.

    Callers use `before_call` / `on_success` / `on_failure` / `on_abandon` around each
    call (or `BreakerBackend`, which does it for a whole backend). The ticket that
    `before_call` returns ties a result to the state it was admitted in: a call admitted
    before the circuit opened that fails late does not push the next probe further out,
    and one that succeeds late does not close a circuit whose probe is still running.

    A probe that neither returns nor raises within `reset_timeout` (a backend with no
    timeout) is given up on, and the next call probes instead, so a lost probe cannot keep
    the circuit shut. `clock` (monotonic seconds) is injectable for tests; `on_transition`
    is called with each `Transition`, outside the breaker's lock.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 5.0,
        *,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        on_transition: Callable[[Transition], object] | None = None,
    ) -> None:
        self.failure_threshold, self.reset_timeout = _check_options(
            failure_threshold, reset_timeout
        )
        if not callable(clock):
            raise TypeError(f"clock must be a callable returning seconds, got {clock!r}.")
        #: What the breaker protects, for messages (a `BreakerBackend` fills in its
        #: backend's name when none was given).
        self.name = name
        self._clock = clock
        self._listeners: list[Callable[[Transition], object]] = []
        if on_transition is not None:
            self.add_listener(on_transition)
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._epoch = 0  # grows with every state change (and every replaced probe)
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None  # half-open: when the probe was let through
        self._last_error = ""
        #: The last `HISTORY` state changes, oldest first.
        self.transitions: deque[Transition] = deque(maxlen=HISTORY)
        #: Calls refused without reaching the backend (open, or half-open with a probe out).
        self.rejected = 0
        #: Failures recorded (admitted calls that raised a `BackendError`).
        self.failures = 0
        #: How many times the circuit opened.
        self.opened = 0

    # --- reading ----------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The name used in messages and logs."""
        return self.name or "backend"

    @property
    def state(self) -> CircuitState:
        """The current state. An open circuit whose cool-down is over still reads OPEN
        until a call arrives: that call becomes the half-open probe."""
        return self._state

    def retry_in(self) -> float:
        """Seconds before an open circuit lets a probe through (0 when not open)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self._opened_at + self.reset_timeout - self._clock())

    def add_listener(self, listener: Callable[[Transition], object]) -> None:
        """Call `listener(transition)` on every state change from now on."""
        if not callable(listener):
            raise TypeError(f"a transition listener must be callable, got {listener!r}.")
        self._listeners.append(listener)

    # --- around a call ----------------------------------------------------------------
    def before_call(self) -> int:
        """Admit a call and return its ticket, or raise `CircuitOpenError` at once."""
        epoch = self._epoch  # read before the state: a change in between makes it stale
        state = self._state
        if state is CircuitState.CLOSED:
            return epoch  # the common case, without the lock
        changed: Transition | None = None
        with self._lock:
            state = self._state
            if state is CircuitState.CLOSED:
                return self._epoch
            now = self._clock()
            if state is CircuitState.OPEN:
                waited = now - self._opened_at
                if waited < self.reset_timeout:
                    self.rejected += 1
                    raise self._refusal(self.reset_timeout - waited)
                changed = self._move(CircuitState.HALF_OPEN, now, "cool-down over: one probe")
                self._probe_started = now
                ticket = self._epoch
            else:  # half-open
                started = self._probe_started
                if started is not None and now - started < self.reset_timeout:
                    self.rejected += 1
                    raise self._refusal(0.0, probing=True)
                self._epoch += 1  # the old probe (if any) is given up on: its result is stale
                self._probe_started = now
                ticket = self._epoch
        self._announce(changed)
        return ticket

    def on_success(self, ticket: int) -> None:
        """The admitted call answered: reset the failure count; a probe closes the circuit."""
        if ticket != self._epoch:
            return  # admitted in an earlier state: says nothing about this one
        if self._consecutive == 0 and self._state is CircuitState.CLOSED:
            return  # the common case: nothing to reset, no lock taken
        changed: Transition | None = None
        with self._lock:
            if ticket != self._epoch:
                return
            self._consecutive = 0
            if self._state is CircuitState.HALF_OPEN:
                changed = self._move(CircuitState.CLOSED, self._clock(), "probe succeeded")
        self._announce(changed)

    def on_failure(self, ticket: int, error: BaseException) -> None:
        """The admitted call failed (a `BackendError`): count it; maybe open the circuit."""
        changed: Transition | None = None
        with self._lock:
            self.failures += 1
            if ticket != self._epoch:
                return
            self._last_error = f"{type(error).__name__}: {error}"
            if self._state is CircuitState.HALF_OPEN:
                changed = self._open(self._clock(), "probe failed")
            elif self._state is CircuitState.CLOSED:
                self._consecutive += 1
                if self._consecutive >= self.failure_threshold:
                    reason = f"{self._consecutive} consecutive failures"
                    changed = self._open(self._clock(), reason)
        self._announce(changed)

    def on_abandon(self, ticket: int) -> None:
        """The admitted call ended with neither answer (cancelled, a bug): a probe's slot
        is freed, so the next call probes instead."""
        with self._lock:
            if ticket == self._epoch and self._state is CircuitState.HALF_OPEN:
                self._probe_started = None

    # --- manual control ---------------------------------------------------------------
    def reset(self) -> None:
        """Close the circuit now (an operator knows the store is back)."""
        with self._lock:
            changed = None
            if self._state is not CircuitState.CLOSED:
                changed = self._move(CircuitState.CLOSED, self._clock(), "reset by hand")
            self._consecutive = 0
        self._announce(changed)

    def trip(self) -> None:
        """Open the circuit now (an operator takes the store out, e.g. for maintenance)."""
        with self._lock:
            changed = self._open(self._clock(), "tripped by hand")
        self._announce(changed)

    # --- internals (called with the lock held) ----------------------------------------
    def _open(self, now: float, reason: str) -> Transition:
        self._opened_at = now
        self._probe_started = None
        self.opened += 1
        return self._move(CircuitState.OPEN, now, reason)

    def _move(self, new: CircuitState, now: float, reason: str) -> Transition:
        transition = Transition(now, self._state, new, reason)
        self._state = new
        self._epoch += 1
        self._consecutive = 0
        self.transitions.append(transition)
        return transition

    def _refusal(self, retry_in: float, *, probing: bool = False) -> CircuitOpenError:
        why = "half-open, a probe call is running" if probing else f"next probe in {retry_in:.2f}s"
        return CircuitOpenError(
            f"circuit open for backend {self.label!r}: not called ({why}; opened after "
            f"{self._last_error or 'failures'}). Reads fail open (a miss or the fallback), "
            "locks fail closed.",
            retry_in=retry_in,
        )

    def _announce(self, transition: Transition | None) -> None:
        if transition is None:
            return
        level = logging.WARNING if transition.new is CircuitState.OPEN else logging.INFO
        log.log(
            level,
            "circuit for backend %r: %s -> %s (%s)",
            self.label,
            transition.old.value,
            transition.new.value,
            transition.reason,
        )
        for listener in self._listeners:
            try:
                listener(transition)
            except Exception:
                log.exception("a circuit transition listener of %r raised", self.label)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.label!r}, state={self._state.value!r}, "
            f"failure_threshold={self.failure_threshold}, reset_timeout={self.reset_timeout:g})"
        )
