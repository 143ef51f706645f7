"""The key layer: one place that turns a user key into the key stored in the backend.

Every command builds its key here: ``{prefix}:v{version}:{key}``, or
``{prefix}:{namespace}:v{version}:{key}`` for a namespaced cache (the namespace sits before
the version so that no cache's patterns ever reach into another namespace's keys). Keys longer
than the limit are replaced by a SHA-256 digest (deterministic across processes, unlike
Python's ``hash()``). Patterns keep the user's glob characters and escape ours.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidKeyError, UnstableKeyError

_GLOB_SPECIALS = re.compile(r"([*?\[\]\\])")


def escape_glob(text: str) -> str:
    """Escape Redis glob characters (``* ? [ ] \\``) so `text` matches only itself."""
    return _GLOB_SPECIALS.sub(r"\\\1", text)


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile a Redis-style glob (``*``, ``?``, ``[...]``, ``\\`` escapes) to a regex."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body.startswith("^")
                body = body[1:] if negate else body
                out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.S)


def stable_digest(value: Any) -> str:
    """A short digest of `value` that is the same in every process and on every run.

    Mappings are ordered by key first, so ``{"a": 1, "b": 2}`` and ``{"b": 2, "a": 1}``
    give one digest. Other objects stand for their ``__cache_key__()`` when they define
    one, else for their ``repr``; a repr with a memory address in it (the default
    ``object.__repr__``) raises `UnstableKeyError` instead of giving a key that no other
    process, and no later call with an equal object, would ever produce.
    """
    return hashlib.sha256(_canonical(value).encode("utf-8", "surrogatepass")).hexdigest()[:32]


_SCALARS = (str, int, float, bool, bytes, type(None))


def _canonical(value: Any) -> str:
    kind = type(value)
    if kind in _SCALARS:  # the common case first: no abstract-class checks
        return f"{kind.__name__}:{value!r}"
    if kind is tuple or kind is list:
        return "[" + ",".join([_canonical(v) for v in value]) + "]"
    if kind is dict or isinstance(value, Mapping):
        items = sorted((_canonical(k), _canonical(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join([_canonical(v) for v in value]) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ",".join(sorted(_canonical(v) for v in value)) + "}"
    if isinstance(value, (str, bytes, int, float)):
        return f"{type(value).__name__}:{value!r}"
    marker = getattr(value, "__cache_key__", None)
    if callable(marker):
        return f"{type(value).__qualname__}:{_canonical(marker())}"
    text = repr(value)
    if " at 0x" in text:  # object.__repr__: an address, different in every process
        raise UnstableKeyError(
            f"{type(value).__qualname__} has no stable text form (its repr {text[:60]!r} "
            "holds a memory address, different in every process), so a key made from it "
            "would never match again. Give the class a __cache_key__(self) method that "
            "returns a stable value (an id, a tuple of fields), or leave the argument out "
            "of the key."
        )
    return f"{type(value).__qualname__}:{text}"


class KeyBuilder:
    """Builds stored keys and patterns for one cache (prefix, version, namespace, limit)."""

    __slots__ = ("_base", "_built", "max_length", "namespace", "prefix", "version")

    def __init__(
        self, prefix: str, version: int, namespace: str | None = None, max_length: int = 250
    ) -> None:
        for label, part in (("CACHE_KEY_PREFIX", prefix), ("namespace", namespace or "x")):
            if not isinstance(part, str) or not part or _GLOB_SPECIALS.search(part):
                raise InvalidKeyError(
                    f"{label} = {part!r} must be a non-empty string without glob characters "
                    "(* ? [ ] \\)."
                )
        if namespace is not None and re.fullmatch(r"v\d+", namespace):
            raise InvalidKeyError(
                f"namespace {namespace!r} looks like a version tag; pick another name."
            )
        self.prefix = prefix
        self.version = version
        self.namespace = namespace
        self.max_length = max_length
        parts = [prefix, *([namespace] if namespace else []), f"v{version}"]
        self._base = ":".join(parts) + ":"
        self._built: dict[str, str] = {}

    @property
    def base(self) -> str:
        """What every key of this cache starts with, e.g. ``"myapp:v1:"``."""
        return self._base

    def key(self, key: str) -> str:
        """The stored key for the user key `key`."""
        if type(key) is not str:
            key = self._coerce(key)
        full = self._base + key
        if len(full) > self.max_length:
            return self._base + "#" + hashlib.sha256(key.encode()).hexdigest()
        return full

    #: Most user keys whose stored form `keys()` remembers (then it starts over).
    REMEMBERED = 4096

    def keys(self, keys: Iterable[str]) -> list[str]:
        """`key()` of each. Batches (``get_many``) repeat keys, so the stored form of recent
        str keys is remembered: one C-level dict lookup per key instead of building it."""
        keys = keys if isinstance(keys, list) else list(keys)
        try:  # all remembered: one C loop, no scan for the ones missing
            return list(map(self._built.__getitem__, keys))
        except KeyError:  # some not seen lately: build those
            get, remember = self._built.get, self._remember
            try:
                return [get(k) or remember(k) for k in keys]
            except TypeError:
                pass
        except TypeError:
            pass
        return [self.key(k) for k in keys]  # an unhashable key: key() says what is wrong

    def _remember(self, key: str) -> str:
        full = self.key(key)
        if type(key) is str:
            if len(self._built) >= self.REMEMBERED:
                self._built.clear()
            self._built[key] = full
        return full

    def pattern(self, pattern: str) -> str:
        """The stored-key glob for a user glob: our part escaped, the user's kept."""
        if not isinstance(pattern, str) or not pattern:
            raise InvalidKeyError(f"pattern {pattern!r} must be a non-empty string, e.g. 'user:*'.")
        return escape_glob(self._base) + pattern

    def strip(self, full_key: str) -> str:
        """The user key of a stored key (hashed long keys stay hashed)."""
        return full_key[len(self._base) :] if full_key.startswith(self._base) else full_key

    @staticmethod
    def _coerce(key: Any) -> str:
        if isinstance(key, str):
            return str(key)
        if isinstance(key, int) and not isinstance(key, bool):
            return str(key)
        raise InvalidKeyError(
            f"cache keys must be str (or int), got {type(key).__name__} {key!r}; build the key "
            "with CacheKeyBuilder or f-strings."
        )


class CacheKeyBuilder:
    """The key shapes of SPEC §10, so every service spells them the same way."""

    @staticmethod
    def user_profile(user_id: Any) -> str:
        return f"user:profile:{user_id}"

    @staticmethod
    def user_permissions(user_id: Any) -> str:
        return f"user:permissions:{user_id}"

    @staticmethod
    def session(session_id: Any) -> str:
        return f"session:{session_id}"

    @staticmethod
    def api_response(endpoint: str, params: Mapping[str, Any] | None = None) -> str:
        """``api:{endpoint}:{digest of the params, order-independent}``."""
        return f"api:{endpoint}:{stable_digest(dict(params or {}))}"

    @staticmethod
    def build(*parts: Any) -> str:
        """Join parts with ``:`` (``build("order", 7, "items")`` -> ``"order:7:items"``)."""
        if not parts:
            raise InvalidKeyError("CacheKeyBuilder.build() needs at least one part.")
        return ":".join(str(p) for p in parts)
