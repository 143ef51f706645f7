"""``cachemesh new-plugin``: render the plugin template into a new, working project.

A third-party author should start from a project that already installs, registers through
its entry point and passes the conformance kit, rather than copy a first-party plugin and
rename it by hand, where the naming rule (distribution, package, entry point) is easy to
break. The template tree is ``templates/plugin/`` in the repository: ``base/`` for every
kind, plus one folder per kind. Only files ending in ``.tmpl`` are rendered (the suffix is
dropped, a ``_package_`` folder becomes the import package); placeholders are
``string.Template`` ``${...}`` names, so the core needs no template engine. The core
wheel ships the tree as ``cachemesh/_plugin_template``, so the command also works from an
installed core.
"""

from __future__ import annotations

import importlib.metadata
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template

from .errors import CachemeshError

#: Where the wheel puts the template (``[tool.hatch.build.targets.wheel]`` in pyproject).
PACKAGED_TEMPLATE = Path(__file__).resolve().parent / "_plugin_template"
#: Where it lives in a source checkout (an editable install of the core).
CHECKOUT_TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "plugin"
SUFFIX = ".tmpl"
PACKAGE_DIR = "_package_"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
MAX_NAME = 30


class ScaffoldError(CachemeshError):
    """The plugin cannot be generated: a bad name or kind, or a folder in the way."""


@dataclass(frozen=True)
class Kind:
    """What the generated README says of one kind of component."""

    summary: str
    #: The ``cachemesh.toml`` lines that select the component (``${component}`` inside).
    usage: str
    tests: str


KINDS: Mapping[str, Kind] = {
    "backend": Kind(
        "cache backend",
        'backend = "${component}"\n\n[backend_options]\nmax_entries = 100000',
        "`tests/test_conformance.py` runs the core's `BackendConformance` suite on the "
        "backend; `tests/test_backend.py` tests its own options.",
    ),
    "strategy": Kind(
        "eviction strategy",
        'strategy = "${component}"\n\n[strategy_options]\nmax_size = 1000',
        "`tests/test_conformance.py` runs `StrategyConformance` on the strategy and "
        "`BackendConformance` on the memory backend keeping its entries in it; "
        "`tests/test_strategy.py` tests its eviction rule.",
    ),
    "serializer": Kind(
        "serializer",
        'serializer = "${component}"\n\n[serializer_options]\nsort_keys = true',
        "`tests/test_conformance.py` runs `BackendConformance` on the memory backend storing "
        "bytes encoded by the serializer; `tests/test_serializer.py` tests round trips and "
        "its two kinds of failure.",
    ),
    "transport": Kind(
        "message transport",
        'broker_url = "${component}://"',
        "`tests/test_conformance.py` runs `TransportConformance` on the transport (tests of "
        "capabilities it does not declare are skipped); `tests/test_transport.py` tests "
        "its URL scheme and its limits.",
    ),
    "router": Kind(
        "message router",
        'router = "${component}"\n\n[router_options]\nqueue_prefix = "events."',
        "`tests/test_router.py` resolves the router through the installed entry point and "
        "routes messages of a queue built from a `cachemesh.toml` (the `make_config` "
        "fixture of `cachemesh.testing`).",
    ),
    "filter": Kind(
        "message filter",
        'filters = ["${component}"]\n\n[filter_options.${component}]\nrequired_keys = ["to"]',
        "`tests/test_filter.py` resolves the filter through the installed entry point and "
        "filters messages of a queue built from a `cachemesh.toml` (the `make_config` "
        "fixture of `cachemesh.testing`).",
    ),
}


@dataclass(frozen=True)
class PluginNames:
    """Every name of one plugin, derived from its short name by the naming rule."""

    name: str  # fifo, my-store
    dist: str  # cachemesh-fifo: what pip installs, and the entry point's name
    package: str  # cachemesh_fifo: the import package, the entry point's target
    component: str  # fifo: what users write in cachemesh.toml
    prefix: str  # Fifo: the start of the class names


@dataclass(frozen=True)
class RenderedPlugin:
    """What `render_plugin` wrote."""

    path: Path
    names: PluginNames
    kind: str
    files: tuple[str, ...]


def plugin_names(raw: str) -> PluginNames:
    """Check `raw` and derive the names; a leading ``cachemesh-`` is allowed and dropped."""
    name = raw.strip()
    for prefix in ("cachemesh-", "cachemesh_"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if not _NAME.fullmatch(name) or len(name) > MAX_NAME:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        guess = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
        hint = (
            f" Did you mean {guess!r}?" if _NAME.fullmatch(guess) and len(guess) <= MAX_NAME else ""
        )
        raise ScaffoldError(
            f"plugin name {raw!r} is not valid: use lowercase letters, digits and single "
            f"dashes, starting with a letter, at most {MAX_NAME} characters (e.g. 'fifo' or "
            f"'my-store').{hint} It becomes the distribution cachemesh-<name>, the package "
            "cachemesh_<name> and the component name."
        )
    return PluginNames(
        name=name,
        dist=f"cachemesh-{name}",
        package="cachemesh_" + name.replace("-", "_"),
        component=name,
        prefix="".join(part.capitalize() for part in name.split("-")),
    )


def template_root() -> Path:
    """The template tree: shipped in the wheel, or the checkout's ``templates/plugin``."""
    for candidate in (PACKAGED_TEMPLATE, CHECKOUT_TEMPLATE):
        if (candidate / "base").is_dir():
            return candidate
    raise ScaffoldError(
        f"the plugin template is missing (looked in {PACKAGED_TEMPLATE} and "
        f"{CHECKOUT_TEMPLATE}): reinstall cachemesh from its wheel, which ships it as "
        "cachemesh/_plugin_template."
    )


def core_requirement(version: str) -> str:
    """A compatible range of the core, not a pin: ``0.1.0`` -> ``cachemesh>=0.1,<1``."""
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]] + [0, 0]
    major, minor = parts[0], parts[1]
    return f"cachemesh>={major}.{minor},<{major + 1}"


def _core_version() -> str:
    try:
        return importlib.metadata.version("cachemesh")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree
        from . import __version__

        return __version__


def template_values(names: PluginNames, kind: str) -> dict[str, str]:
    """Every placeholder the template may use."""
    spec = KINDS[kind]
    values = {
        "name": names.name,
        "dist": names.dist,
        "package": names.package,
        "component": names.component,
        "prefix": names.prefix,
        "kind": kind,
        "kind_summary": spec.summary,
        "tests_note": spec.tests,
        "core_requirement": core_requirement(_core_version()),
        "command": f"cachemesh new-plugin {names.name} --kind {kind}",
    }
    values["usage"] = Template(spec.usage).substitute(values)
    return values


def render_files(names: PluginNames, kind: str, root: Path | None = None) -> dict[str, str]:
    """{relative path: text} of the project, rendered in memory (nothing written yet).

    ``base/`` first, then the kind's folder, whose files replace base files of the same
    path.
    """
    if kind not in KINDS:
        raise ScaffoldError(f"unknown kind {kind!r}: choose one of {', '.join(KINDS)}.")
    root = root if root is not None else template_root()
    values = template_values(names, kind)
    files: dict[str, str] = {}
    for tree in (root / "base", root / kind):
        if not tree.is_dir():
            raise ScaffoldError(f"the plugin template has no folder {tree}: reinstall cachemesh.")
        for source in sorted(tree.rglob(f"*{SUFFIX}")):
            parts = list(source.relative_to(tree).parts)
            parts[-1] = parts[-1][: -len(SUFFIX)]
            relative = "/".join(names.package if p == PACKAGE_DIR else p for p in parts)
            try:
                files[relative] = Template(source.read_text(encoding="utf-8")).substitute(values)
            except (KeyError, ValueError) as exc:  # a bug in the template, named precisely
                raise ScaffoldError(
                    f"template {source} has a bad placeholder ({exc}); known names: "
                    f"{', '.join(sorted(values))} (write $$ for a literal $)."
                ) from None
    return files


def render_plugin(
    name: str, kind: str, directory: Path | None = None, *, force: bool = False
) -> RenderedPlugin:
    """Write the project for plugin `name` of `kind` into `directory`.

    `directory` defaults to ``./cachemesh-<name>``. An existing non-empty folder is left
    alone unless `force`; with `force`, the files the template generates are overwritten
    and every other file is kept.
    """
    names = plugin_names(name)
    files = render_files(names, kind)  # every check before the first write
    target = directory if directory is not None else Path.cwd() / names.dist
    if target.exists() and not target.is_dir():
        raise ScaffoldError(f"{target} exists and is not a folder: pick another --dir.")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ScaffoldError(
            f"{target} already exists and is not empty: pick another --dir, remove it, or "
            "pass --force to overwrite the files the template generates (others are kept)."
        )
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    return RenderedPlugin(target, names, kind, tuple(files))
