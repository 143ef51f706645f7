"""Building the two levels from their specs, through the registry, like any backend.

Each level gets a copy of the cache's config with its own backend, options and strategy,
so a level is exactly what ``backend = "<name>"`` with those options would build, and a bad
option fails at start-up naming ``backend_options.levels[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cachemesh import CacheBackend, CacheConfig, ConfigError, InProcessBackend
from cachemesh.components import resolve_options

from .options import LevelSpec, MultiLevelOptions

if TYPE_CHECKING:
    from cachemesh import ComponentRegistry


def level_config(config: CacheConfig, spec: LevelSpec) -> CacheConfig:
    """`config` as the level's own backend would see it."""
    update: dict[str, Any] = {"CACHE_BACKEND": spec.backend, "CACHE_BACKEND_OPTIONS": spec.options}
    if spec.strategy is not None:
        update["CACHE_STRATEGY"] = spec.strategy
        update["CACHE_STRATEGY_OPTIONS"] = spec.strategy_options
    return config.model_copy(update=update)


def build_level(
    spec: LevelSpec,
    index: int,
    config: CacheConfig,
    registry: ComponentRegistry,
    *,
    serialize: bool,
) -> CacheBackend:
    """The backend of ``levels[index]``, validated and built before any connection is made.

    `serialize` is what an in-process level keeps unless its options say otherwise:
    payloads (True), or objects for an L1 with ``l1_values = "objects"`` or ``"copies"``.
    """
    where = f"backend_options.levels[{index}]"
    cls = registry.resolve("backend", spec.backend, config_key=f"{where}.backend")
    if spec.strategy is not None:  # fail here, with the level's key, not deep in the backend
        registry.resolve("strategy", spec.strategy, config_key=f"{where}.strategy")
    options = dict(spec.options)
    if "serialize" in cls.Options.model_fields:
        options.setdefault("serialize", serialize)
    own = level_config(config, spec.model_copy(update={"options": options}))
    parsed = resolve_options(cls, options, config=own, config_key=f"{where}.options")
    backend: CacheBackend = cls(parsed, config=own, registry=registry)
    return backend


def check_levels(l1: CacheBackend, l2: CacheBackend, *, mode: str) -> None:
    """Refuse pairs the coherence model or the value mode cannot work with, saying why."""
    if not isinstance(l1, InProcessBackend):
        raise ConfigError(
            f"backend_options.levels[0] is {l1.name!r}, which is not an in-process backend. "
            "L1 is this process's private copy (invalidated over pub/sub, reset on reconnect); "
            "use memory (with any strategy) or another InProcessBackend there."
        )
    objects = mode != "payloads"
    if l1.stores_objects != objects:
        serialize = "false" if objects else "true"
        raise ConfigError(
            f'backend_options.l1_values = "{mode}", but levels[0] ({l1.name!r}) keeps '
            f"{'payloads' if objects else 'live objects'}. Set serialize = {serialize} in "
            "backend_options.levels[0].options, or change l1_values."
        )
    if l2.stores_objects:
        raise ConfigError(
            f"backend_options.levels[1] ({l2.name!r}) keeps live objects; the shared level "
            "holds encoded payloads. Set serialize = true in backend_options.levels[1].options."
        )


def build_levels(
    opts: MultiLevelOptions,
    given: Sequence[CacheBackend | None],
    config: CacheConfig,
    registry: ComponentRegistry,
    owned: list[CacheBackend],
) -> tuple[InProcessBackend, CacheBackend]:
    """L1 and L2: those `given`, else built from `opts.levels` (and appended to `owned`,
    so the caller closes them, also when a later step fails)."""
    levels: list[CacheBackend] = []
    for index, (spec, level) in enumerate(zip(opts.levels, given, strict=True)):
        if level is None:
            serialize = index == 1 or opts.l1_values == "payloads"  # L1: objects when asked
            level = build_level(spec, index, config, registry, serialize=serialize)
            owned.append(level)
        levels.append(level)
    l1, l2 = levels
    check_levels(l1, l2, mode=opts.l1_values)
    assert isinstance(l1, InProcessBackend)
    return l1, l2
