"""What every component class has in common: a name users type, and an options model.

Registration hooks return component classes; the registry indexes them by `name`, and
`build()` validates the options a config gives against `Options` before any object exists,
so a bad option fails at start-up with the key and the allowed values, never mid-request.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class NoOptions(BaseModel):
    """Options model of a component that takes none: any key given is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Component:
    """Base of every component class a plugin registers."""

    #: What users write in a config file to pick this component (e.g. ``"lru"``).
    name: ClassVar[str] = ""
    #: The component kind, set by each kind's base class (``"backend"``, ``"strategy"``...).
    kind: ClassVar[str] = ""
    #: Pydantic model validating this component's options; ``extra="forbid"`` is advised.
    Options: ClassVar[type[BaseModel]] = NoOptions

    @classmethod
    def parse_options(cls, options: dict[str, Any] | BaseModel | None) -> BaseModel:
        """Validate `options` against `Options` (raises pydantic.ValidationError)."""
        if isinstance(options, cls.Options):
            return options
        if isinstance(options, BaseModel):
            options = options.model_dump()
        return cls.Options.model_validate(options or {})
