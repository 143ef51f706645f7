"""A circuit breaker around a cache backend: an outage costs one timeout, not one per call.

Without it, every call to a hung store waits for the socket timeout: at 100 calls a second
and a 0.5 s timeout, fifty callers are stuck at any moment. With it, a few consecutive
failures *open* the circuit and every later call fails at once with `CircuitOpenError` (a
`BackendUnavailableError`), which the cache's error policy turns into a miss, a fallback
read or a typed error, in microseconds. After ``reset_timeout`` seconds the circuit goes
*half-open* and lets one probe call through: its success closes the circuit, its failure
opens it again for another ``reset_timeout``.

Two options close the gaps that remain, for a store that hangs rather than refuses:

* ``stall_timeout``: the calls already in flight when a store hangs each wait out the op
  timeout, and so does every call admitted until ``failure_threshold`` of them have timed
  out. With ``stall_timeout`` set, a call that arrives while calls are in flight and none
  has answered for ``stall_timeout`` seconds opens the circuit: a hang is noticed in about
  1.25 x ``stall_timeout`` (the silence is confirmed by a second call a quarter of it
  later, so a process that was merely not scheduled does not trip it), not in one op
  timeout.
* ``background_probe``: the half-open probe is the backend's ``ping``, run off the
  caller's path (a task or a thread, by `BreakerBackend`), and the call that triggered it
  is refused like any other, so no caller waits for a probe into a hung store.

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

    def __init__(
        self, message: str, *, retry_in: float = 0.0, probe_ticket: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_in = retry_in
        #: Set when the breaker (``background_probe``) wants the refusing wrapper to start
        #: a probe with this ticket; `BreakerBackend` does.
        self.probe_ticket = probe_ticket


@dataclass(frozen=True)
class Transition:
    """One state change: when (the breaker's clock), from what, to what, and why."""

    at: float
    old: CircuitState
    new: CircuitState
    reason: str


def _check_stall_timeout(stall_timeout: object) -> float | None:
    if stall_timeout is None:
        return None
    if (
        not isinstance(stall_timeout, (int, float))
        or isinstance(stall_timeout, bool)
        or not 0 < stall_timeout < math.inf
    ):
        raise ConfigError(
            f"stall_timeout={stall_timeout!r} is not valid: give the seconds without any "
            "answer (while calls are waiting) after which the store counts as hung, a finite "
            "number > 0 well above your slowest normal call (e.g. 0.05), or None to turn "
            "hang detection off."
        )
    return float(stall_timeout)


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
        stall_timeout: float | None = None,
        background_probe: bool = False,
    ) -> None:
        self.failure_threshold, self.reset_timeout = _check_options(
            failure_threshold, reset_timeout
        )
        #: Seconds without an answer, with calls waiting, that open the circuit (None: off).
        self.stall_timeout = _check_stall_timeout(stall_timeout)
        if not isinstance(background_probe, bool):
            raise TypeError(f"background_probe must be True or False, got {background_probe!r}.")
        #: Probe with the backend's ``ping`` off the caller's path (see the module doc).
        self.background_probe = background_probe
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
        self._in_flight = 0  # admitted calls not yet finished (kept when stall_timeout is set)
        self._answered_at = 0.0  # when a call last finished, or the first of a busy spell began
        self._suspected_at: float | None = None  # when a stall was first seen (not yet sure)
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
        """Admit a call and return its ticket, or raise `CircuitOpenError` at once.

        With ``background_probe``, the call that is due to probe is refused too, and its
        `CircuitOpenError` carries the probe's ``probe_ticket``: whoever catches it runs
        the probe and reports it with that ticket (`BreakerBackend` pings).
        """
        epoch = self._epoch  # read before the state: a change in between makes it stale
        if self._state is CircuitState.CLOSED and self.stall_timeout is None:
            return epoch  # the common case, without the lock
        changed: Transition | None = None
        refusal: CircuitOpenError | None = None
        with self._lock:
            state = self._state
            now = self._clock()
            if state is CircuitState.CLOSED:
                stall = self.stall_timeout
                if (
                    stall is not None
                    and self._in_flight
                    and now - self._answered_at >= stall
                    and self._stall_confirmed(now, stall)
                ):
                    reason = (
                        f"no answer for {now - self._answered_at:.3f}s with "
                        f"{self._in_flight} call(s) waiting (stall_timeout={stall:g}s)"
                    )
                    self._last_error = f"the store stopped answering: {reason}"
                    changed = self._open(now, reason)
                    self.rejected += 1
                    refusal = self._refusal(self.reset_timeout)
                else:
                    ticket = self._epoch
            elif state is CircuitState.OPEN:
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
            if refusal is None:
                if state is not CircuitState.CLOSED and self.background_probe:
                    # The probe runs off the caller's path: the caller is refused.
                    self.rejected += 1
                    refusal = self._refusal(0.0, probing=True)
                    refusal.probe_ticket = ticket
                elif self.stall_timeout is not None:
                    self._admitted(now)
        self._announce(changed)
        if refusal is not None:
            raise refusal
        return ticket

    def probe_started(self) -> None:
        """A background probe (ticket from `CircuitOpenError.probe_ticket`) is in flight:
        count it like an admitted call, so its silence is seen as a stall too."""
        if self.stall_timeout is not None:
            with self._lock:
                self._admitted(self._clock())

    def _stall_confirmed(self, now: float, stall: float) -> bool:
        """Seen twice, a quarter of `stall_timeout` apart, with no answer in between.

        One sighting is not enough: a process that was not scheduled for a while (a GC
        pause, a starved CPU, a busy event loop) sees "no answer for 0.6 s" on its first
        call back, before it has read the answers waiting in its sockets.
        """
        suspected = self._suspected_at
        if suspected is None or suspected < self._answered_at:
            self._suspected_at = now  # first sighting (or an answer came since the last)
            return False
        return now - suspected >= stall / 4

    def _admitted(self, now: float) -> None:
        if not self._in_flight:
            self._answered_at = now  # a busy spell starts: silence is measured from here
        self._in_flight += 1

    def _finished(self, answered: bool) -> None:
        """One admitted call ended; `answered`: the store replied (a timeout is no reply)."""
        with self._lock:
            if self._in_flight:
                self._in_flight -= 1
            if answered:
                self._answered_at = self._clock()

    def on_success(self, ticket: int) -> None:
        """The admitted call answered: reset the failure count; a probe closes the circuit."""
        if self.stall_timeout is not None:
            self._finished(True)
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
        if self.stall_timeout is not None:
            self._finished(False)
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
        if self.stall_timeout is not None:
            self._finished(False)
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
        extra = "" if self.stall_timeout is None else f", stall_timeout={self.stall_timeout:g}"
        if self.background_probe:
            extra += ", background_probe=True"
        return (
            f"CircuitBreaker({self.label!r}, state={self._state.value!r}, "
            f"failure_threshold={self.failure_threshold}, reset_timeout={self.reset_timeout:g}"
            f"{extra})"
        )
