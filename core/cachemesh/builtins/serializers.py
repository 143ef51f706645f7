"""Built-in serializers: ``json`` (the default), ``msgpack`` and signed ``pickle``.

JSON uses orjson when it is installed. Pickle can run code while loading, so it is only
available with a signing key: every payload carries an HMAC-SHA256 tag that is checked
before ``pickle.loads`` ever sees the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
from typing import Any, ClassVar

from ..errors import ConfigError, SerializationError
from ..plugins import hookimpl
from ..serializers import CorruptEntry, Serializer

try:  # orjson is an optional speed-up, not a requirement
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]


def _unserializable(name: str, value: Any, exc: Exception) -> SerializationError:
    return SerializationError(
        f"The {name} serializer cannot encode a {type(value).__name__} ({exc}). Store "
        "JSON-compatible data (dict, list, str, int, float, bool, None), convert the value "
        "first, or configure another serializer (msgpack, or pickle with CACHE_SIGNING_KEY)."
    )


class JsonSerializer(Serializer):
    """JSON: safe to load from any source; tuples come back as lists."""

    name: ClassVar[str] = "json"
    batch_loads = staticmethod(orjson.loads) if orjson is not None else None

    def dumps(self, value: Any) -> bytes:
        try:
            if orjson is not None:
                return orjson.dumps(value)
            return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise _unserializable(self.name, value, exc) from None

    def loads(self, payload: bytes) -> Any:
        try:
            if orjson is not None:
                return orjson.loads(payload)
            return json.loads(payload)
        except ValueError as exc:
            raise CorruptEntry(f"not JSON: {exc}") from None


class MsgpackSerializer(Serializer):
    """MessagePack: compact binary, needs the ``msgpack`` package."""

    name: ClassVar[str] = "msgpack"

    def __init__(self, options: Any = None, signing_key: bytes | None = None) -> None:
        super().__init__(options, signing_key)
        try:
            import msgpack
        except ImportError:
            raise ConfigError(
                "serializer = 'msgpack' needs the msgpack package: "
                "pip install 'cachemesh[msgpack]'."
            ) from None
        self._msgpack = msgpack

    def dumps(self, value: Any) -> bytes:
        try:
            return bytes(self._msgpack.packb(value, use_bin_type=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise _unserializable(self.name, value, exc) from None

    def loads(self, payload: bytes) -> Any:
        try:
            return self._msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:
            raise CorruptEntry(f"not msgpack: {exc}") from None


class SignedPickleSerializer(Serializer):
    """Pickle, refused without a signing key; each payload is ``tag(32 bytes) + pickle``."""

    name: ClassVar[str] = "pickle"
    _TAG = 32

    def __init__(self, options: Any = None, signing_key: bytes | None = None) -> None:
        super().__init__(options, signing_key)
        if not signing_key or len(signing_key) < 16:
            raise ConfigError(
                "serializer = 'pickle' runs code when loading, so cachemesh only allows it signed: "
                "set CACHE_SIGNING_KEY to a secret of at least 16 characters (the same in every "
                "process that shares the cache), or use the json serializer."
            )
        self._key = signing_key

    def dumps(self, value: Any) -> bytes:
        try:
            body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise _unserializable(self.name, value, exc) from None
        return hmac.new(self._key, body, hashlib.sha256).digest() + body

    def loads(self, payload: bytes) -> Any:
        tag, body = payload[: self._TAG], payload[self._TAG :]
        expected = hmac.new(self._key, body, hashlib.sha256).digest()
        if len(tag) != self._TAG or not hmac.compare_digest(tag, expected):
            raise CorruptEntry("pickle payload signature does not match")
        try:
            return pickle.loads(body)
        except Exception as exc:
            raise CorruptEntry(f"signed pickle failed to load: {exc}") from None


@hookimpl
def cachemesh_register_serializers() -> list[type[Serializer]]:
    return [JsonSerializer, MsgpackSerializer, SignedPickleSerializer]
