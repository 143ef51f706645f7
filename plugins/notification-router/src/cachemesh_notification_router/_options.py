"""Options taken three ways (keywords, a mapping, a model) and one kind of error for all.

A router or filter is built by hand (``NotificationRouter(routes={...})``), from a table
read out of a config file (``NotificationRouter({"routes": ...})``), or by the registry
(``registry.resolve("router", "notification")(options)``). All three paths go through
`build_options`, so a bad option fails at construction, before any message is sent, with
the same `ConfigError` naming the option, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from cachemesh import ConfigError
from pydantic import BaseModel, ValidationError


def build_options(component: type[Any], options: Any, keywords: Mapping[str, Any]) -> BaseModel:
    """Validate `options` merged with `keywords` against ``component.Options``."""
    model: type[BaseModel] = component.Options
    if options is not None and not isinstance(options, (Mapping, BaseModel)):
        raise TypeError(
            f"{component.__name__}() takes its options as keywords or one mapping, e.g. "
            f"{component.__name__}({example(model)}); got {options!r}."
        )
    if isinstance(options, model) and not keywords:
        return options
    merged = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
    merged.update(keywords)
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(describe(component, exc)) from None


def describe(component: type[Any], exc: ValidationError) -> str:
    """One sentence per problem, in the core's wording: ``key = value: why``."""
    problems = []
    for error in exc.errors():
        key = _where(error["loc"])
        shown = "" if error["type"] == "missing" else f" = {error.get('input')!r}"
        problems.append(f"{key}{shown}: {error['msg'].removeprefix('Value error, ')}")
    allowed = ", ".join(
        f"{name} ({_type_name(field.annotation)})"
        for name, field in component.Options.model_fields.items()
    )
    return (
        f"Invalid options for the {component.kind} {component.name!r} "
        f"({component.__name__}): " + "; ".join(problems) + f". Allowed options: {allowed}."
    )


def _where(loc: tuple[int | str, ...]) -> str:
    """``routes['user.email']`` rather than pydantic's ``routes.user.email``: routing keys
    have dots of their own."""
    if not loc:
        return "options"
    text = str(loc[0])
    for part in loc[1:]:
        text += " (the key)" if part == "[key]" else f"[{part!r}]"
    return text


def example(model: type[BaseModel]) -> str:
    """``name=default, ...`` (``name=...`` when required), to show in errors."""
    return ", ".join(
        f"{name}=..."
        if field.is_required()
        else f"{name}={field.get_default(call_default_factory=True)!r}"
        for name, field in model.model_fields.items()
    )


def _type_name(annotation: Any) -> str:
    """``dict[str, str]``, ``str | None``: the type as a user writes it, without the
    validators pydantic keeps in ``Annotated``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(_type_name(arg) for arg in args)
    if annotation is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join(_type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', origin)}[{inner}]"
    return str(getattr(annotation, "__name__", annotation))
