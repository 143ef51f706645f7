"""The ``priority`` and ``user-type`` filters: pass a message when one field is allowed.

Both are the guide's filters (SPEC §9) with the field, the allowed values and the value
a missing field stands for as options, so one class covers "only urgent ones" and "only
premium users" without subclassing. A message is a mapping (the dict that was sent), an
object with attributes, or a delivered `cachemesh.Message`, whose *body* is read: the
envelope has its own ``priority`` (0-9), which is not the one the guide filters on.
Comparison is exact and case-sensitive (``"High"`` is not ``"high"``); a field that is
absent or ``None`` (JSON ``null``) counts as the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

from cachemesh.messaging import Message, MessageFilter
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ._options import build_options

_ABSENT: Any = object()


def _names(value: Any, what: str) -> Any:
    """A bare string where a list belongs is the usual slip: say how to write the list."""
    if isinstance(value, str):
        raise ValueError(f'{what} must be a list of strings, e.g. ["{value}"], not a string')
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return value


def _non_empty(value: str, what: str) -> str:
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


class FieldFilterOptions(BaseModel):
    """What every one-field filter is told: which field, which values, and the default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    allowed: list[str] = Field(min_length=1, description="Values that let a message through.")
    field: str = Field(description="The message field (dict key or attribute) to look at.")
    default: str = Field(description="The value a missing (or None) field counts as.")

    @field_validator("allowed", mode="before")
    @classmethod
    def _allowed_is_a_list(cls, value: Any) -> Any:
        return _names(value, "allowed")

    @field_validator("allowed")
    @classmethod
    def _allowed_items(cls, value: list[str]) -> list[str]:
        for item in value:
            _non_empty(item, "every allowed value")
        return value

    @field_validator("field", "default")
    @classmethod
    def _named(cls, value: str, info: ValidationInfo) -> str:
        return _non_empty(value, str(info.field_name))


class PriorityFilterOptions(FieldFilterOptions):
    """Options of the ``priority`` filter; the defaults are the guide's."""

    allowed: list[str] = Field(
        default_factory=lambda: ["high", "urgent"],
        min_length=1,
        description="Priorities that let a message through.",
    )
    field: str = Field("priority", description="The message field that holds the priority.")
    default: str = Field("normal", description="The priority of a message that gives none.")


class UserTypeFilterOptions(FieldFilterOptions):
    """Options of the ``user-type`` filter; `allowed` has no sensible default, so it is
    required."""

    allowed: list[str] = Field(min_length=1, description="User types that get the message.")
    field: str = Field("user_type", description="The message field that holds the user type.")
    default: str = Field("regular", description="The user type of a message that gives none.")


class FieldFilter(MessageFilter):
    """Pass a message when ``message[field]`` (or the default) is one of `allowed`.

    Not registered itself: `PriorityFilter` and `UserTypeFilter` are its named forms.
    """

    Options: ClassVar[type[BaseModel]] = FieldFilterOptions

    def __init__(self, options: Any = None, **kwargs: Any) -> None:
        # A subclass that changes Options extends FieldFilterOptions.
        opts = cast(FieldFilterOptions, build_options(type(self), options, kwargs))
        self.options = opts
        self._field = opts.field
        self._default = opts.default
        self._allowed = tuple(opts.allowed)
        self._allowed_set = frozenset(opts.allowed)

    @property
    def allowed(self) -> tuple[str, ...]:
        return self._allowed

    @property
    def field(self) -> str:
        return self._field

    @property
    def default(self) -> str:
        return self._default

    def value_of(self, message: Any) -> tuple[Any, bool]:
        """The field's value in `message` and whether it was missing (then the default)."""
        if isinstance(message, Message):
            message = message.body
        if isinstance(message, Mapping):
            value = message.get(self._field, _ABSENT)
        else:
            value = getattr(message, self._field, _ABSENT)
        if value is _ABSENT or value is None:
            return self._default, True
        return value, False

    def _allows(self, value: Any) -> bool:
        try:
            return value in self._allowed_set
        except TypeError:  # an unhashable value (a list, a dict) is never an allowed name
            return False

    def filter(self, message: Any) -> bool:
        """True when the message may be sent."""
        return self._allows(self.value_of(message)[0])

    def explain(self, message: Any) -> str:
        """Why the message passes or is dropped, naming the field, its value and the list."""
        value, missing = self.value_of(message)
        passed = self._allows(value)
        allowed = list(self._allowed)
        head = f"{type(self).__name__} {'passes' if passed else 'drops'} the message"
        verb = "is" if passed else "is not"
        if missing:
            return f"{head}: {self._field} missing → {value!r}, which {verb} in {allowed}"
        return f"{head}: {self._field} {value!r} {verb} in {allowed}"

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.model_dump().items())
        return f"{type(self).__name__}({opts})"


class PriorityFilter(FieldFilter):
    """The guide's priority filter: only ``high`` and ``urgent`` pass; no priority means
    ``normal``, which does not."""

    name: ClassVar[str] = "priority"
    Options: ClassVar[type[BaseModel]] = PriorityFilterOptions


class UserTypeFilter(FieldFilter):
    """The guide's user-type filter: only the listed user types pass; no user type means
    ``regular``. ``UserTypeFilter(allowed=["premium", "vip"])``."""

    name: ClassVar[str] = "user-type"
    Options: ClassVar[type[BaseModel]] = UserTypeFilterOptions
