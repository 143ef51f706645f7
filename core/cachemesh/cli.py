"""The ``cachemesh`` command: see what is installed, check a config, try the examples,
read cache metrics, and start a plugin project (``cachemesh new-plugin``, in `scaffold`).

Operators need answers without writing Python: which plugins did this environment load
(``cachemesh plugins``), will the config in this directory work (``cachemesh check``), what
does the library do (``cachemesh demo``), and how are the caches doing (``cachemesh
stats``). Every command reads the same sources as the library (environment, ``.env``,
``cachemesh.toml`` / ``[tool.cachemesh]``, ``CACHEMESH_CONFIG``), so what the command says
is what the application will get.

Exit codes: 0 all well, 1 a cachemesh error (printed as one line on stderr, no traceback:
the messages already say what to fix), 2 a usage error (argparse's convention).
Secrets are never printed: settings are shown through redacting helpers only.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import io
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pluggy
from pydantic import BaseModel, SecretStr

from ._missing import MISSING
from .cache import Cache, SyncCache
from .components import build_strategy
from .config import SECRET_FIELDS, CacheConfig, redact_url
from .config_file import find_config_file
from .decorators import cache_result
from .errors import CachemeshError
from .keys import CacheKeyBuilder
from .metrics import CacheMetrics, CacheStats, format_stats
from .metrics_scrape import scrape
from .plugins import (
    ENTRY_POINT_GROUP,
    get_plugin_manager,
    get_registry,
    plugin_distribution,
)
from .registry import KIND_HOOKS, ComponentRegistry
from .scaffold import KINDS, render_plugin
from .serializers import CorruptEntry

PROG = "cachemesh"
BUILTIN_PREFIX = "cachemesh.builtins."
#: Option names whose values are never shown (a backend's password, a token in its options).
_SECRET_OPTION = re.compile(r"pass(word|wd)?|secret|token|credential|signing|api_?key", re.I)
_HIDDEN = "**********"
#: ``password = 'x'`` / ``"token": "x"`` inside a message: the quoted value is hidden.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>[\w.]*(?:pass(?:word|wd)?|secret|token|credential|signing|api_?key)[\w.]*['\"]?)"
    r"(?P<eq>\s*[=:]\s*)(?P<q>['\"])(?P<value>.*?)(?P=q)",
    re.I,
)

Out = TextIO


class CommandFailed(CachemeshError):
    """A check or demo step gave a wrong answer (reported like any cachemesh error)."""


# --- helpers -----------------------------------------------------------------------------


def _core_version() -> str:
    """The installed core version; the distribution metadata is the single source of truth."""
    try:
        return importlib.metadata.version("cachemesh")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        from . import __version__

        return __version__


def safe_value(name: str, value: Any) -> Any:
    """`value` ready to print: secret-looking names hidden, URL passwords masked.

    Options dicts come from config files written by people, who put passwords and URLs
    with credentials there; the CLI must be safe to paste into a bug report.
    """
    if isinstance(value, SecretStr) or (_SECRET_OPTION.search(name) and value is not None):
        return _HIDDEN
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Mapping):
        return {str(k): safe_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_value(name, v) for v in value]
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def scrub(message: str) -> str:
    """An error message made safe to print: URL passwords, secret-named values, secret env.

    Core messages echo the offending input so users can see the typo; when the offending
    input is a password (``[backend_options] pasword = "..."``) that echo would leak it.
    """
    message = redact_url(message)
    message = _SECRET_ASSIGNMENT.sub(lambda m: f"{m['name']}{m['eq']}<hidden>", message)
    for name in sorted(SECRET_FIELDS):
        value = os.environ.get(name)
        if value and len(value) >= 4:
            message = message.replace(value, "<hidden>")
    return message


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


# --- cachemesh plugins -------------------------------------------------------------------


@dataclass
class DistributionReport:
    """What one installed distribution contributes: its plugins, components and hooks."""

    distribution: str
    version: str
    plugins: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)
    hooks: list[str] = field(default_factory=list)


@dataclass
class ComponentReport:
    """One registered component and where it came from (the flat view for machines)."""

    kind: str
    name: str
    distribution: str
    version: str
    plugin: str


@dataclass
class NotLoadedReport:
    """An installed plugin the manager skipped, and why (the usual "where is my plugin?")."""

    entry_point: str
    distribution: str
    version: str
    reason: str


@dataclass
class PluginsReport:
    """Everything ``cachemesh plugins`` prints, in the shape ``--json`` emits."""

    distributions: list[DistributionReport]
    components: list[ComponentReport]
    not_loaded: list[NotLoadedReport]


def _distribution_of(pm: pluggy.PluginManager, plugin_name: str) -> tuple[str, str]:
    """(distribution, version) of a plugin, telling built-ins from plugins registered in code.

    `plugin_distribution` reports the core for anything without dist-info, which would
    credit a plugin registered at run time (a conftest, an app) to cachemesh itself.
    """
    if plugin_name.startswith(BUILTIN_PREFIX):
        return "cachemesh", _core_version()
    plugin = pm.get_plugin(plugin_name)
    if any(registered is plugin for registered, _ in pm.list_plugin_distinfo()):
        return plugin_distribution(pm, plugin_name)
    return f"{plugin_name} (registered in code)", "-"


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """Hooks a plugin implements besides component registration (e.g. the error policy)."""
    registration = set(KIND_HOOKS.values())
    callers = pm.get_hookcallers(plugin) or []
    return sorted(c.name for c in callers if c.name not in registration)


def _not_loaded(pm: pluggy.PluginManager) -> list[NotLoadedReport]:
    """Installed entry points of group ``cachemesh`` that the manager did not register."""
    allow = os.environ.get("CACHEMESH_LOAD_PLUGINS")
    skipped = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.get_plugin(ep.name) is not None:
            continue
        if pm.is_blocked(ep.name):
            reason = "blocked by CACHEMESH_DISABLE_PLUGINS"
        elif allow is not None:
            reason = "not named in CACHEMESH_LOAD_PLUGINS"
        else:
            reason = "entry points not loaded by this plugin manager"
        dist = ep.dist
        skipped.append(
            NotLoadedReport(
                entry_point=ep.name,
                distribution=dist.name if dist else ep.name,
                version=dist.version if dist else "-",
                reason=reason,
            )
        )
    return sorted(skipped, key=lambda s: s.entry_point)


def collect_plugins(pm: pluggy.PluginManager, registry: ComponentRegistry) -> PluginsReport:
    """Group the manager's plugins and the registry's components by distribution."""
    by_dist: dict[str, DistributionReport] = {}
    plugin_dist: dict[str, DistributionReport] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # a blocked name
            continue
        dist, version = _distribution_of(pm, name)
        report = by_dist.setdefault(dist, DistributionReport(dist, version))
        report.plugins.append(name)
        report.hooks = sorted({*report.hooks, *_hooks_of(pm, plugin)})
        plugin_dist[name] = report
    components = []
    for kind, name, _cls in registry.items():
        provider = registry.provider(kind, name)
        report = plugin_dist[provider]
        report.components.setdefault(kind, []).append(name)
        components.append(
            ComponentReport(kind, name, report.distribution, report.version, provider)
        )
    ordered = sorted(
        by_dist.values(), key=lambda d: (d.distribution != "cachemesh", d.distribution)
    )
    return PluginsReport(ordered, components, _not_loaded(pm))


def print_plugins(report: PluginsReport, out: Out) -> None:
    """The human form: one block per distribution, components by kind."""
    for dist in report.distributions:
        tag = " (core, built-in components)" if dist.distribution == "cachemesh" else ""
        print(f"{dist.distribution} {dist.version}{tag}", file=out)
        for kind, names in dist.components.items():
            print(f"  {kind + ':':<12} {', '.join(names)}", file=out)
        if dist.hooks:
            print(f"  {'hooks:':<12} {', '.join(dist.hooks)}", file=out)
        if not dist.components and not dist.hooks:
            print("  (no components)", file=out)
    if report.not_loaded:
        print("\ninstalled but not loaded:", file=out)
        for skipped in report.not_loaded:
            print(f"  {skipped.distribution} {skipped.version}: {skipped.reason}", file=out)


def cmd_plugins(args: argparse.Namespace, out: Out) -> int:
    """``cachemesh plugins [--json]``: what the process-wide plugin manager registered."""
    pm = get_plugin_manager()
    report = collect_plugins(pm, get_registry())
    if args.json:
        print(json.dumps(asdict(report), indent=2), file=out)
    else:
        print_plugins(report, out)
    return 0


# --- cachemesh check ---------------------------------------------------------------------


def _config_source() -> str:
    """Which file feeds the config, so "why is it using X?" has an answer."""
    found = find_config_file()
    if found is None:
        return "none (defaults, environment variables and .env only)"
    path, table = found
    return f"{path} [{table}]" if table else str(path)


def _secrets_line(config: CacheConfig) -> str:
    """Whether each secret is set, never its value."""
    states = [
        f"{name} {'set (hidden)' if getattr(config, name) is not None else 'not set'}"
        for name in sorted(SECRET_FIELDS)
    ]
    return ", ".join(states)


def _component_line(registry: ComponentRegistry, kind: str, name: str) -> str:
    """``name (from dist version)``: tells which installed plugin will do the work."""
    pm = get_plugin_manager()
    dist, version = _distribution_of(pm, registry.provider(kind, name))
    return f"{name} (from {dist} {version})"


def _strategy_repr(cache: SyncCache) -> str:
    """The strategy in force; validated even when the backend keeps no in-process store."""
    strategy = getattr(cache.backend, "strategy", None)
    if strategy is None:
        strategy = build_strategy(cache.config, get_registry())
    return repr(strategy)


def _describe(cache: SyncCache, out: Out) -> None:
    config, registry = cache.config, get_registry()
    backend_opts = safe_value("backend_options", cache.backend.options)
    print(f"backend:     {_component_line(registry, 'backend', cache.backend.name)}", file=out)
    print(f"  options:   {backend_opts}", file=out)
    strategy = _component_line(registry, "strategy", config.CACHE_STRATEGY)
    print(f"strategy:    {strategy} -> {_strategy_repr(cache)}", file=out)
    serializer = _component_line(registry, "serializer", cache.serializer.name)
    print(f"serializer:  {serializer}", file=out)
    print(f"keys:        {cache.keys.base!r} (CACHE_KEY_PREFIX, CACHE_VERSION)", file=out)
    print(f"timeout:     {config.CACHE_DEFAULT_TIMEOUT}s default", file=out)
    print(f"secrets:     {_secrets_line(config)}", file=out)


def _round_trip(cache: SyncCache, out: Out) -> None:
    """set/get/delete on a fresh key: proves reads, writes and deletes reach the store."""
    key = f"cachemesh-check:{uuid.uuid4().hex}"
    full = cache.keys.key(key)
    value = {"check": key, "numbers": [1, 2, 3], "ok": True}
    started = time.perf_counter()
    if not cache.set(key, value, timeout=60):  # the TTL cleans up if delete never runs
        raise CommandFailed(f"set {full!r} was not stored (the backend error policy absorbed it)")
    got = cache.get(key, MISSING)
    if got != value:
        shown = "nothing" if got is MISSING else repr(got)
        raise CommandFailed(f"get {full!r} returned {shown}, expected {value!r}")
    if not cache.delete(key) or cache.exists(key):
        raise CommandFailed(f"delete {full!r} did not remove the key")
    print(f"round trip:  set/get/delete ok on {full!r} ({_ms(started)})", file=out)


def _serializer_round_trip(cache: SyncCache, out: Out) -> None:
    """Encode and decode directly: an object-keeping backend never exercises the serializer."""
    value = {"text": "héllo", "n": 7, "items": [1.5, None]}
    try:
        back = cache.serializer.loads(cache.serializer.dumps(value))
    except CorruptEntry as exc:
        name = cache.serializer.name
        raise CommandFailed(f"the {name} serializer cannot decode: {exc}") from None
    if back != value:
        raise CommandFailed(f"the {cache.serializer.name} serializer gave back {back!r}")
    print(f"serializer:  {cache.serializer.name} encode/decode ok", file=out)


def cmd_check(args: argparse.Namespace, out: Out) -> int:
    """``cachemesh check``: build exactly what the app would build, then use it once."""
    print(f"config file: {_config_source()}", file=out)
    config = CacheConfig()
    cache = SyncCache(config)
    try:
        _describe(cache, out)
        started = time.perf_counter()
        cache.ping()
        print(f"ping:        ok ({_ms(started)})", file=out)
        _round_trip(cache, out)
        _serializer_round_trip(cache, out)
    finally:
        cache.close()
    print(f"{PROG} check: OK", file=out)
    return 0


# --- cachemesh demo ----------------------------------------------------------------------

DEMO_NAMESPACE = "cachemesh-demo"
DEMO_USER = {"id": 1001, "name": "Alice", "email": "alice@example.com", "roles": ["admin"]}


class _Demo:
    """Prints each example as code, then what it returned, and checks the answer."""

    def __init__(self, out: Out) -> None:
        self.out = out
        self.step = 0

    def title(self, text: str) -> None:
        self.step += 1
        print(f"\n{self.step}. {text}", file=self.out)

    def show(self, code: str, result: Any) -> None:
        print(f"   {code} -> {result!r}", file=self.out)

    def note(self, text: str) -> None:
        print(f"   {text}", file=self.out)

    def expect(self, what: str, got: Any, want: Any) -> None:
        """Fail the demo on a wrong answer: a demo that prints wrong results is worse."""
        if got != want:
            raise CommandFailed(f"demo step {self.step} ({what}): got {got!r}, expected {want!r}")


async def _demo_basic(cache: Cache, d: _Demo) -> None:
    d.title("set / get / exists / delete (SPEC §2)")
    key = "user:profile:1001"
    stored = await cache.set(key, DEMO_USER, timeout=3600)
    d.show(f"await cache.set({key!r}, user, timeout=3600)", stored)
    got = await cache.get(key)
    d.show(f"await cache.get({key!r})", got)
    d.expect("get returns the dict", got, DEMO_USER)
    d.show(f"await cache.exists({key!r})", await cache.exists(key))
    deleted = await cache.delete(key)
    d.show(f"await cache.delete({key!r})", deleted)
    d.expect("delete", deleted, True)
    after = (await cache.exists(key), await cache.get(key))
    d.show("exists / get after delete", after)
    d.expect("gone after delete", after, (False, None))


async def _demo_many(cache: Cache, d: _Demo) -> None:
    d.title("set_many / get_many / delete_pattern (SPEC §2)")
    users = {f"user:{i}": {"id": i, "name": name} for i, name in [(1, "Ann"), (2, "Bob")]}
    users["session:abc"] = {"user_id": 1}
    stored = await cache.set_many(users, timeout=1800)
    d.show(f"await cache.set_many({users}, timeout=1800)", stored)
    keys = ["user:2", "user:404", "user:1"]
    got = await cache.get_many(keys)
    d.show(f"await cache.get_many({keys})", got)
    d.expect(
        "get_many keeps order, None when absent", got, [users["user:2"], None, users["user:1"]]
    )
    removed = await cache.delete_pattern("user:*")
    d.show("await cache.delete_pattern('user:*')", removed)
    d.expect("delete_pattern count", removed, 2)
    left = await cache.get_many(["user:1", "user:2", "session:abc"])
    d.show("await cache.get_many(['user:1', 'user:2', 'session:abc'])", left)
    d.expect("only user:* removed", left, [None, None, users["session:abc"]])


async def _demo_cache_result(cache: Cache, d: _Demo) -> None:
    d.title('@cache_result(timeout=600, key_prefix="api_data") (SPEC §3)')
    calls: list[str] = []

    # The guide's decorator; cache= keeps the demo's entries in its own namespace (without
    # it, results go to the process default cache, cachemesh.default_cache()).
    @cache_result(timeout=600, key_prefix="api_data", cache=cache)
    async def fetch_api_data(endpoint: str) -> dict[str, Any]:
        calls.append(endpoint)
        return {"endpoint": endpoint, "items": [1, 2, 3]}

    for endpoint in ("/users", "/users", "/users", "/orders"):
        result = await fetch_api_data(endpoint)
        d.show(f"await fetch_api_data({endpoint!r})", result)
        d.note(f"function calls so far: {len(calls)}")
    d.expect("the function ran once per distinct argument", len(calls), 2)
    d.note("the three '/users' calls ran the function once; '/orders' ran it again")


def _demo_keys(d: _Demo) -> None:
    d.title("CacheKeyBuilder (SPEC §10)")
    d.show("CacheKeyBuilder.user_profile(1001)", CacheKeyBuilder.user_profile(1001))
    d.show("CacheKeyBuilder.user_permissions(1001)", CacheKeyBuilder.user_permissions(1001))
    d.show("CacheKeyBuilder.session('abc123')", CacheKeyBuilder.session("abc123"))
    one = CacheKeyBuilder.api_response("/users", {"page": 2, "size": 20})
    two = CacheKeyBuilder.api_response("/users", {"size": 20, "page": 2})
    d.show("CacheKeyBuilder.api_response('/users', {'page': 2, 'size': 20})", one)
    d.show("CacheKeyBuilder.api_response('/users', {'size': 20, 'page': 2})", two)
    d.expect("params order does not matter", one, two)


async def _demo_lru(d: _Demo) -> None:
    d.title("LRUCache(max_size=2).cached on an async function (SPEC §7)")
    try:
        from cachemesh import LRUCache
    except ImportError as exc:
        d.note(f"skipped: {exc}")
        return
    lru = LRUCache(max_size=2)
    calls: list[int] = []

    @lru.cached
    async def square(n: int) -> int:
        calls.append(n)
        return n * n

    for n in (2, 3, 2, 4, 3):
        d.show(f"await square({n})", await square(n))
    d.note(f"computed for {calls} ({len(calls)} calls); len(lru) = {len(lru)}")
    d.note("2 was a hit; 4 evicted 3 (least recently used), so 3 was computed again")
    d.expect("lru calls", calls, [2, 3, 4, 3])


class _FakeClock:
    """A clock the demo moves forward, to show expiry without sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _demo_ttl(d: _Demo) -> None:
    d.title("TTLCache(default_ttl=300).cached on an async function (SPEC §7)")
    try:
        from cachemesh import TTLCache
    except ImportError as exc:
        d.note(f"skipped: {exc}")
        return
    clock = _FakeClock()
    ttl = TTLCache(default_ttl=300, clock=clock)
    calls: list[str] = []

    @ttl.cached
    async def get_config(name: str) -> dict[str, str]:
        calls.append(name)
        return {"name": name, "loaded_at": f"t={clock.now:g}s"}

    d.show("await get_config('site')", await get_config("site"))
    clock.now = 299.0
    d.show("await get_config('site')  # 299 s later", await get_config("site"))
    clock.now = 301.0
    d.show("await get_config('site')  # 301 s later", await get_config("site"))
    d.note(f"function calls: {len(calls)} (cached for 300 s, then computed again)")
    d.expect("ttl calls", len(calls), 2)


async def _demo(out: Out) -> None:
    d = _Demo(out)
    async with Cache(CacheConfig(), namespace=DEMO_NAMESPACE) as cache:
        print(
            f"{PROG} demo: the SPEC's cache examples on backend {cache.backend.name!r}, "
            f"keys under {cache.keys.base!r}",
            file=out,
        )
        await cache.clear()  # leftovers of an interrupted run would skew the call counts
        try:
            await _demo_basic(cache, d)
            await _demo_many(cache, d)
            await _demo_cache_result(cache, d)
            _demo_keys(d)
            await _demo_lru(d)
            await _demo_ttl(d)
        finally:
            removed = await cache.clear()
            print(f"\ncleanup: removed {removed} demo key(s) under {cache.keys.base!r}", file=out)
    print(f"{PROG} demo: OK", file=out)


def cmd_demo(args: argparse.Namespace, out: Out) -> int:
    """``cachemesh demo``: run the guide's examples on the configured backend."""
    asyncio.run(_demo(out))
    return 0


# --- cachemesh stats ---------------------------------------------------------------------

STATS_NAMESPACE = "cachemesh-stats"


def _stats_workload(ops: int, out: Out) -> list[CacheStats]:
    """Time a small scripted workload on the configured cache, every operation measured.

    A CLI process has no live caches of its own: this answers "what do hits, misses and
    round trips cost from here, on this config?" with the figures the metrics layer gives.
    """
    config = CacheConfig().model_copy(update={"CACHE_METRICS": [], "CACHE_METRICS_OPTIONS": {}})
    metrics = CacheMetrics(STATS_NAMESPACE, sample_every=1)
    with SyncCache(config, namespace=STATS_NAMESPACE, metrics=metrics) as cache:
        print(
            f"{PROG} stats: {ops:,} sets, {ops:,} hits, {ops // 4:,} misses, one get_many and "
            f"{ops // 10:,} deletes on backend {cache.backend.name!r}, keys under "
            f"{cache.keys.base!r}, every operation timed\n",
            file=out,
        )
        cache.clear()  # leftovers of an interrupted run would turn misses into hits
        try:
            value = {"id": 0, "name": "Alice", "roles": ["admin", "ops"]}
            for i in range(ops):
                cache.set(f"user:{i}", value, timeout=60)
            for i in range(ops):
                cache.get(f"user:{i}")
            for i in range(ops // 4):
                cache.get(f"absent:{i}")
            cache.get_many([f"user:{i}" for i in range(min(ops, 100))])
            for i in range(ops // 10):
                cache.delete(f"user:{i}")
        finally:
            cache.clear()
    return [metrics.snapshot()]


def cmd_stats(args: argparse.Namespace, out: Out) -> int:
    """``cachemesh stats``: a service's live figures (``--url``), or a measured workload."""
    if args.url:
        stats = scrape(args.url, prefix=args.prefix)
        if not args.json:
            print(f"{PROG} stats: {redact_url(args.url)}\n", file=out)
    else:
        if args.ops < 1:
            raise CommandFailed(f"--ops must be at least 1, got {args.ops}")
        stats = _stats_workload(args.ops, out if not args.json else io.StringIO())
    if args.json:
        print(json.dumps([s.as_dict() for s in stats], indent=2), file=out)
    else:
        print(format_stats(stats), file=out)
    return 0


# --- cachemesh new-plugin ----------------------------------------------------------------


def cmd_new_plugin(args: argparse.Namespace, out: Out) -> int:
    """``cachemesh new-plugin NAME --kind KIND``: a plugin project that already works."""
    made = render_plugin(args.name, args.kind, args.dir, force=args.force)
    names = made.names
    print(
        f"created {made.path}: {names.dist}, a {made.kind} plugin (component "
        f"{names.component!r}, package {names.package})",
        file=out,
    )
    for relative in sorted(made.files):
        print(f"  {relative}", file=out)
    print("next:", file=out)
    print(f"  cd {made.path}", file=out)
    print('  pip install -e ".[test]"', file=out)
    print("  pytest                # its tests, the cachemesh test kit wired in", file=out)
    print(
        f"  cachemesh plugins     # lists {names.dist} with  {made.kind}: {names.component}",
        file=out,
    )
    return 0


# --- entry point -------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Out], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; ``prog`` is fixed so ``python -m cachemesh`` reads the same."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Inspect installed cachemesh plugins, check the config, run the examples, read "
            "cache metrics, start a plugin."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_core_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plugins = sub.add_parser("plugins", help="list installed plugins and their components")
    plugins.add_argument("--json", action="store_true", help="print JSON for machines")
    plugins.set_defaults(func=cmd_plugins)
    check = sub.add_parser("check", help="load the config, build it, ping and round-trip")
    check.set_defaults(func=cmd_check)
    demo = sub.add_parser("demo", help="walk through the cache examples on the backend")
    demo.set_defaults(func=cmd_demo)
    stats = sub.add_parser(
        "stats", help="cache metrics: a service's Prometheus endpoint, or a timed workload"
    )
    stats.add_argument(
        "--url", help="read a running service's figures from its Prometheus /metrics endpoint"
    )
    stats.add_argument(
        "--prefix", default="cachemesh", help="metric name prefix at --url (default cachemesh)"
    )
    stats.add_argument(
        "--ops", type=int, default=1000, help="operations of the timed workload (default 1000)"
    )
    stats.add_argument("--json", action="store_true", help="print JSON for machines")
    stats.set_defaults(func=cmd_stats)
    new_plugin = sub.add_parser(
        "new-plugin", help="create a plugin project from the template, tests included"
    )
    new_plugin.add_argument(
        "name", metavar="NAME", help="the plugin's short name: fifo gives cachemesh-fifo"
    )
    new_plugin.add_argument(
        "--kind",
        required=True,
        choices=list(KINDS),
        metavar="KIND",
        help=f"the kind of component it provides: {', '.join(KINDS)}",
    )
    new_plugin.add_argument(
        "--dir", type=Path, metavar="PATH", help="the project folder (default ./cachemesh-NAME)"
    )
    new_plugin.add_argument(
        "--force", action="store_true", help="write into an existing non-empty folder"
    )
    new_plugin.set_defaults(func=cmd_new_plugin)
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace | int:
    """Parsed arguments, or the exit code argparse chose (2 on usage errors, 0 on --help)."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)


def _run(args: argparse.Namespace, out: Out, err: Out) -> int:
    """Run the command; a cachemesh error becomes one stderr line and exit code 1.

    The library's messages already say what is wrong and how to fix it, so a traceback
    would only bury them.
    """
    func: Command = args.func
    try:
        return func(args, out)
    except CachemeshError as exc:
        out.flush()
        print(f"{PROG} {args.command}: FAILED: {scrub(str(exc))}", file=err)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this; the script exits with it)."""
    parsed = _parse(argv)
    if isinstance(parsed, int):
        return parsed
    return _run(parsed, sys.stdout, sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
