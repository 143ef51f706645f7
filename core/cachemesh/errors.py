"""One error hierarchy for cachemesh.

Every error says what was wrong and how to fix it, so a user can act on the message
alone. Callers catch `CachemeshError` to catch anything the library raises on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable


class CachemeshError(Exception):
    """Base class of every error cachemesh raises on purpose."""


class ConfigError(CachemeshError, ValueError):
    """A config file, keyword or environment variable holds something cachemesh cannot use."""


class PluginLoadError(CachemeshError, ImportError):
    """A plugin named in an allow-list is not installed, or failed to import."""


class DuplicateComponentError(CachemeshError):
    """Two plugins register a component of the same kind under the same name."""


class InvalidComponentError(CachemeshError, TypeError):
    """A registration hook returned something that is not a usable component class."""


class UnknownComponentError(CachemeshError, LookupError):
    """A config names a component that no installed plugin provides."""

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        config_key: str,
        available: Iterable[str],
        suggestion: str | None,
        install_hint: str,
    ) -> None:
        self.kind = kind
        self.name = name
        self.config_key = config_key
        self.available = sorted(available)
        self.suggestion = suggestion
        self.install_hint = install_hint
        parts = [f"{config_key} = {name!r}: no {kind} named {name!r} is installed."]
        if suggestion:
            parts.append(f"Did you mean {suggestion!r}?")
        parts.append("Available: " + (", ".join(repr(n) for n in self.available) or "none") + ".")
        parts.append(install_hint)
        super().__init__(" ".join(parts))


class MissingPluginError(CachemeshError, ImportError):
    """A public name needs a plugin distribution that is not installed."""


class CacheError(CachemeshError):
    """A cache operation failed."""


class BackendError(CacheError):
    """The store behind a cache failed (unreachable, timed out, refused the command)."""


class BackendTimeoutError(BackendError, TimeoutError):
    """The store did not answer within the configured timeout."""


class BackendUnavailableError(BackendError, ConnectionError):
    """The store cannot be reached."""


class SerializationError(CacheError, TypeError):
    """A value cannot be encoded by the configured serializer."""


class InvalidKeyError(CacheError, ValueError):
    """A key is empty, of the wrong type, or too long once built."""


class UnstableKeyError(InvalidKeyError):
    """An argument has no text form that is the same in every process (see stable_digest)."""


class ValueTooLargeError(CacheError, ValueError):
    """An encoded value is larger than the configured limit."""


class LockError(CachemeshError):
    """A `DistributedLock` was misused or could not do what was asked."""


class LockNotOwned(LockError):
    """The lock's lease is gone (it expired, or another holder has the key now).

    Raised by ``release()`` and ``extend()``; the other holder's key is left untouched.
    Whatever ran under the lock may have overlapped with that other holder.
    """


class LockUnavailable(LockError):
    """The lock's backend cannot be reached: the lock fails closed (it is not held).

    ``outcome_unknown`` is True when a request may have reached the server before the
    failure, so the key may hold this lock's token until its TTL runs out; calling
    ``acquire()`` again on the same lock object picks such a lease up.
    """

    def __init__(self, message: str, *, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown
