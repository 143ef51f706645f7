"""Reading ``cachemesh.toml`` or ``[tool.cachemesh]`` of ``pyproject.toml``.

The file picks components by name and gives their options; its ``[settings]`` table can set
any `CacheConfig` field. The environment, ``.env`` and keyword arguments override the file.
Every problem is reported with the file, the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

CONFIG_ENV_VAR = "CACHEMESH_CONFIG"

#: Top-level file key -> the CacheConfig field it sets. Later kinds add their keys here.
FILE_KEYS: Mapping[str, str] = {
    "backend": "CACHE_BACKEND",
    "backend_options": "CACHE_BACKEND_OPTIONS",
    "strategy": "CACHE_STRATEGY",
    "strategy_options": "CACHE_STRATEGY_OPTIONS",
    "serializer": "CACHE_SERIALIZER",
    "serializer_options": "CACHE_SERIALIZER_OPTIONS",
    "fallback": "CACHE_FALLBACK",
    "fallback_options": "CACHE_FALLBACK_OPTIONS",
    "metrics": "CACHE_METRICS",
    "metrics_options": "CACHE_METRICS_OPTIONS",
    "broker_url": "MESSAGE_BROKER_URL",
    "transport_options": "MESSAGE_TRANSPORT_OPTIONS",
    "router": "MESSAGE_ROUTER",
    "router_options": "MESSAGE_ROUTER_OPTIONS",
    "filters": "MESSAGE_FILTERS",
    "filter_options": "MESSAGE_FILTER_OPTIONS",
}
#: Keys whose value is a list of component names.
LIST_KEYS = frozenset({"filters", "metrics"})
SETTINGS_TABLE = "settings"


def find_config_file(cwd: Path | None = None) -> tuple[Path, str] | None:
    """The config file in force and the table that holds it ("" for the whole file).

    ``CACHEMESH_CONFIG`` wins and must exist; else ``cachemesh.toml`` in the working
    directory; else ``pyproject.toml`` there, when it has a ``[tool.cachemesh]`` table.
    """
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"{CONFIG_ENV_VAR}={explicit!r}, but that file does not exist. Point it at a "
                "cachemesh.toml (or a pyproject.toml with [tool.cachemesh]), or unset it."
            )
        return path, ("tool.cachemesh" if path.name == "pyproject.toml" else "")
    base = cwd or Path.cwd()
    own = base / "cachemesh.toml"
    if own.is_file():
        return own, ""
    pyproject = base / "pyproject.toml"
    if pyproject.is_file() and "cachemesh" in _read_toml(pyproject).get("tool", {}):
        return pyproject, "tool.cachemesh"
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}). Fix the syntax.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror}).") from None


def read_config_file(path: Path, table: str, field_names: set[str]) -> dict[str, Any]:
    """The CacheConfig values a file gives, keyed by field name (values not yet validated)."""
    data: Any = _read_toml(path)
    where = str(path)
    for part in filter(None, table.split(".")):
        data = data.get(part, {})
        where = f"{path} [{table}]"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a table of settings, got {type(data).__name__}.")
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == SETTINGS_TABLE:
            values.update(_settings_table(where, value, field_names))
        elif key in FILE_KEYS:
            if key.endswith("_options") and not isinstance(value, dict):
                raise ConfigError(
                    f"{where}: {key} = {value!r} must be a table, e.g. [{key}] with one "
                    "option per line."
                )
            if key in LIST_KEYS:
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(
                        f"{where}: {key} = {value!r} must be a list of component names, "
                        f'e.g. {key} = ["priority"].'
                    )
            elif not key.endswith("_options") and not isinstance(value, str):
                raise ConfigError(
                    f"{where}: {key} = {value!r} must be a component name in quotes, "
                    f'e.g. {key} = "memory".'
                )
            values[FILE_KEYS[key]] = value
        else:
            allowed = ", ".join([*FILE_KEYS, SETTINGS_TABLE])
            from ._suggest import closest

            hint = closest(key, [*FILE_KEYS, SETTINGS_TABLE])
            guess = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(f"{where}: unknown key {key!r}.{guess} Allowed keys: {allowed}.")
    return values


def _settings_table(where: str, table: Any, field_names: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [settings] must be a table, got {table!r}.")
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = key.upper()
        if name not in field_names:
            from ._suggest import closest

            hint = closest(name, field_names)
            guess = f" Did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"{where}: [settings] has unknown setting {key!r}.{guess} "
                "See docs/configuration.md for every setting."
            )
        out[name] = value
    return out
