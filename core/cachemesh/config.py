"""`CacheConfig`: every setting of SPEC §1 plus the component selection, from one place.

Sources, strongest first: keyword arguments, environment variables, ``.env``, the config
file (``cachemesh.toml`` or ``[tool.cachemesh]``), defaults. Secrets (``REDIS_PASSWORD``,
``CACHE_SIGNING_KEY``, passwords inside URLs) never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    SecretStr,
    SerializerFunctionWrapHandler,
    ValidationError,
    create_model,
    model_serializer,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ._suggest import closest
from .config_file import find_config_file, read_config_file
from .errors import ConfigError

SECRET_FIELDS = frozenset({"REDIS_PASSWORD", "CACHE_SIGNING_KEY"})
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*(?=@)", re.I)


_SECRET_NAME = re.compile(r"pass(word)?|secret|token|signing|credential|api_?key", re.I)


def redact_url(url: str) -> str:
    """``redis://user:secret@host`` -> ``redis://user:***@host``; anything else unchanged."""
    return _URL_PASSWORD.sub(r"\g<head>***", url)


def redact(name: str, value: Any) -> Any:
    """`value` fit for a repr, log line or error: secrets by name hidden, URL passwords masked.

    Nested mappings and lists are walked, so options such as
    ``{"url": "redis://:pw@h", "password": "pw"}`` come out clean too.
    """
    if value is not None and (name in SECRET_FIELDS or _SECRET_NAME.search(name)):
        return "<hidden>"
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: redact(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(name, v) for v in value)
    return value


class _ConfigFileSource(PydanticBaseSettingsSource):
    """Lowest-priority source: the values of the config file in force, if any."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns everything at once

    def __call__(self) -> dict[str, Any]:
        found = find_config_file()
        if found is None:
            return {}
        path, table = found
        values = read_config_file(path, table, set(self.settings_cls.model_fields))
        for name, value in values.items():
            _validate_one(name, value, source=f"{path}", key=name)
        return values


def _validate_one(name: str, value: Any, *, source: str, key: str) -> None:
    field = CacheConfig.model_fields[name]
    try:
        annotation: Any = field.annotation
        create_model("FileSetting", value=(annotation, field)).model_validate({"value": value})
    except ValidationError as exc:
        shown = repr(redact(name, value))
        reason = exc.errors()[0]["msg"]
        raise ConfigError(
            f"{source}: {key} = {shown} is not allowed: {reason}. Expected {_describe_type(field)}."
        ) from None


def _describe_type(field: FieldInfo) -> str:
    annotation = field.annotation
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


class CacheConfig(BaseSettings):
    """Settings of a cache, its Redis connection, Celery, and the components to build.

    Field names are upper-case, as in the environment and ``.env``. Unknown keyword
    arguments are an error (with a did-you-mean); unknown environment variables are ignored.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        frozen=True,
    )

    # --- SPEC §1: Redis -----------------------------------------------------------------
    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = Field(6379, ge=1, le=65535)
    REDIS_DB: int = Field(0, ge=0)
    REDIS_PASSWORD: SecretStr | None = None
    REDIS_MAX_CONNECTIONS: int = Field(20, ge=1)
    REDIS_SOCKET_TIMEOUT: float = Field(5, gt=0)
    REDIS_CONNECTION_TIMEOUT: float = Field(5, gt=0)

    # --- SPEC §1: cache -----------------------------------------------------------------
    CACHE_DEFAULT_TIMEOUT: int = Field(300, gt=0)
    CACHE_KEY_PREFIX: str = "myapp"
    CACHE_VERSION: int = Field(1, ge=0)

    # --- SPEC §1: Celery ----------------------------------------------------------------
    CELERY_BROKER_URL: str | None = None
    CELERY_RESULT_BACKEND: str | None = None
    CELERY_TASK_SERIALIZER: str = "json"
    CELERY_RESULT_SERIALIZER: str = "json"
    CELERY_ACCEPT_CONTENT: list[str] = ["json"]
    CELERY_TIMEZONE: str = "UTC"
    CELERY_ENABLE_UTC: bool = True
    CELERY_TASK_ROUTES: dict[str, Any] = {}
    CELERY_WORKER_CONCURRENCY: int = Field(4, ge=1)

    # --- cachemesh: components chosen by name, and the key/value layer -------------------
    CACHE_BACKEND: str = "memory"
    CACHE_BACKEND_OPTIONS: dict[str, Any] = {}
    CACHE_STRATEGY: str = "none"
    CACHE_STRATEGY_OPTIONS: dict[str, Any] = {}
    CACHE_SERIALIZER: str = "json"
    CACHE_SERIALIZER_OPTIONS: dict[str, Any] = {}
    CACHE_SIGNING_KEY: SecretStr | None = None
    CACHE_MAX_KEY_LENGTH: int = Field(250, ge=16)
    CACHE_MAX_VALUE_BYTES: int | None = Field(None, gt=0)
    CACHE_ON_BACKEND_ERROR: Literal["raise", "miss"] = "raise"
    CACHE_FALLBACK: str | None = None
    CACHE_FALLBACK_OPTIONS: dict[str, Any] = {}
    CACHE_METRICS: list[str] = []
    CACHE_METRICS_OPTIONS: dict[str, dict[str, Any]] = {}

    # --- cachemesh: messaging -----------------------------------------------------------
    MESSAGE_BROKER_URL: str = "memory://"
    MESSAGE_TRANSPORT_OPTIONS: dict[str, Any] = {}
    MESSAGE_ROUTER: str | None = None
    MESSAGE_ROUTER_OPTIONS: dict[str, Any] = {}
    MESSAGE_FILTERS: list[str] = []
    MESSAGE_FILTER_OPTIONS: dict[str, dict[str, Any]] = {}

    def __init__(self, **values: Any) -> None:
        fields = type(self).model_fields
        unknown = [k for k in values if not k.startswith("_") and k not in fields]
        if unknown:
            key = unknown[0]
            hint = closest(key.upper(), fields)
            guess = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"CacheConfig got an unknown setting {key!r}.{guess} Settings are upper-case; "
                "see docs/configuration.md for the list."
            )
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _ConfigFileSource(settings_cls),
            file_secret_settings,
        )

    @property
    def config_file(self) -> Path | None:
        """The config file in force for this process, if any (for error messages)."""
        found = find_config_file()
        return found[0] if found else None

    @model_serializer(mode="wrap", when_used="json")
    def _redacted_json(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """JSON dumps are for logs and tools: secrets inside options and URLs are masked."""
        data: dict[str, Any] = handler(self)
        return {name: redact(name, value) for name, value in data.items()}

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name is None or isinstance(value, SecretStr):
                yield name, value
            else:
                yield name, redact(name, value)


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "CacheConfig"
        shown = repr(redact(name, error.get("input")))
        lines.append(f"{name} = {shown}: {error['msg']}")
    return (
        "Invalid cachemesh settings (from keyword arguments, environment variables, .env or "
        "the config file): " + "; ".join(lines) + "."
    )
