"""The plugin template end to end: render each kind with ``cachemesh new-plugin``, install
it, run its own tests, and see ``cachemesh plugins`` list it.

The rendered plugins are installed with ``pip install --no-deps --target`` into a
throwaway folder that only the subprocesses of this module put on ``PYTHONPATH``: the
shared environment never sees them (``tests/test_entry_points.py`` checks every installed
plugin, and a leaked one would break other tests). ``importlib.metadata`` finds their
``.dist-info`` there, so their entry points load as if pip had installed them for real.

Time: measured 3 min 3 s to 4 min 46 s on 2 cores shared with a load average of 6 to 10
(about 80 s of CPU). pip builds the six projects (one isolated hatchling build each,
about 25 s), their suites run three at a time (the conformance suites wait on real
expiry and blocking receives), mypy checks each project once (about 30 s, cold), and the
core wheel is built once to prove the command works from an installed wheel too.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cachemesh.cli import main
from cachemesh.scaffold import KINDS, plugin_names, render_plugin

ROOT = Path(__file__).resolve().parents[1]
KIND_LIST = list(KINDS)
ENV_PREFIXES = ("CACHEMESH_", "CACHE_", "REDIS_", "CELERY_", "PYTEST_")
LONGEST = "abcdefghij-abcdefghij-abcdefgh"


def _name(kind: str) -> str:
    """A plugin name no real plugin uses."""
    return f"tmplcheck-{kind}"


def _env(pythonpath: Path | None = None) -> dict[str, str]:
    """This environment without cachemesh/pytest settings, with `pythonpath` first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return env


def _run(
    args: list[str], cwd: Path, pythonpath: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=cwd,
        env=_env(pythonpath),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _pip_install_into(
    site: Path, packages: Iterable[Path], cwd: Path, timeout: float = 300
) -> None:
    """``pip install --no-deps --target site packages``: the packages only, into a folder
    put on PYTHONPATH (what they need is already in this interpreter)."""
    install = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(site),
            *map(str, packages),
        ],
        cwd=cwd,
        timeout=timeout,
    )
    assert install.returncode == 0, _explain(install)


def _explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


class Rendered:
    """The six projects, rendered with the CLI and installed into one target folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.site = base / "site"
        self.projects = {kind: base / f"cachemesh-{_name(kind)}" for kind in KIND_LIST}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    found = Rendered(tmp_path_factory.mktemp("plugin-template"))
    for kind, project in found.projects.items():
        out = io.StringIO()
        with contextlib.redirect_stdout(out):  # the command, run in-process: it only writes files
            code = main(["new-plugin", _name(kind), "--kind", kind, "--dir", str(project)])
        assert code == 0, out.getvalue()
        assert out.getvalue().startswith(f"created {project}: cachemesh-{_name(kind)}, a {kind}")
    _pip_install_into(found.site, found.projects.values(), found.base, timeout=600)
    return found


@pytest.fixture(scope="module")
def suite_runs(rendered: Rendered) -> Mapping[str, subprocess.CompletedProcess[str]]:
    """Each project's own tests, run by pytest in the project, on the installed package."""

    def run(kind: str) -> subprocess.CompletedProcess[str]:
        return _run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=rendered.projects[kind],
            pythonpath=rendered.site,
            timeout=600,
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(KIND_LIST, pool.map(run, KIND_LIST), strict=True))


@pytest.fixture(scope="module")
def listed(rendered: Rendered) -> dict[str, Any]:
    result = _run(
        [sys.executable, "-m", "cachemesh", "plugins", "--json"],
        cwd=rendered.base,
        pythonpath=rendered.site,
    )
    assert result.returncode == 0, _explain(result)
    listing: dict[str, Any] = json.loads(result.stdout)
    return listing


# --- installed and tested ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_LIST)
def test_the_rendered_plugin_passes_its_own_tests(
    kind: str, suite_runs: Mapping[str, subprocess.CompletedProcess[str]]
) -> None:
    result = suite_runs[kind]
    assert result.returncode == 0, _explain(result)
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary


@pytest.mark.parametrize("kind", KIND_LIST)
def test_cachemesh_plugins_lists_the_rendered_plugin(kind: str, listed: dict[str, Any]) -> None:
    names = plugin_names(_name(kind))
    (dist,) = [d for d in listed["distributions"] if d["distribution"] == names.dist]
    assert dist["version"] == "0.1.0"
    assert dist["plugins"] == [names.dist]  # registered through its entry point
    assert dist["components"] == {kind: [names.component]}
    assert not [s for s in listed["not_loaded"] if s["distribution"] == names.dist]


def test_the_human_listing_shows_the_components(rendered: Rendered) -> None:
    result = _run(
        [sys.executable, "-m", "cachemesh", "plugins"], cwd=rendered.base, pythonpath=rendered.site
    )
    assert result.returncode == 0, _explain(result)
    for kind in KIND_LIST:
        names = plugin_names(_name(kind))
        assert f"{names.dist} 0.1.0\n  {kind + ':':<12} {names.component}\n" in result.stdout


def test_nothing_leaks_into_the_shared_environment(rendered: Rendered) -> None:
    """Without the target folder on PYTHONPATH, no rendered plugin is installed."""
    for kind in KIND_LIST:
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(plugin_names(_name(kind)).dist)
        assert importlib.util.find_spec(plugin_names(_name(kind)).package) is None
    result = _run([sys.executable, "-m", "cachemesh", "plugins", "--json"], cwd=rendered.base)
    assert result.returncode == 0, _explain(result)
    assert "tmplcheck" not in result.stdout


# --- lint and types, as the project's own code ---------------------------------------------

needs_ruff = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None, reason="ruff is not installed here"
)
needs_mypy = pytest.mark.skipif(
    importlib.util.find_spec("mypy") is None, reason="mypy is not installed here"
)


@pytest.fixture(scope="module")
def short_and_long(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind rendered with the shortest and the longest valid names."""
    base = tmp_path_factory.mktemp("plugin-template-names")
    for kind in KIND_LIST:
        for name in ("a", LONGEST):
            render_plugin(name, kind, base / f"{kind}-{len(name)}")
    return base


@needs_ruff
def test_the_rendered_code_is_ruff_clean_for_any_name_length(short_and_long: Path) -> None:
    """One run over the twelve projects: ruff reads each project's own pyproject."""
    projects = [str(p) for p in sorted(short_and_long.iterdir())]
    for args in (["check", "--no-cache"], ["format", "--no-cache", "--check"]):
        result = _run([sys.executable, "-m", "ruff", *args, *projects], cwd=short_and_long)
        assert result.returncode == 0, f"ruff {args[0]}\n{_explain(result)}"


@needs_mypy
def test_the_rendered_code_is_mypy_strict_clean(
    short_and_long: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.mktemp("mypy-cache")
    for kind in KIND_LIST:
        project = short_and_long / f"{kind}-{len(LONGEST)}"
        result = _run(
            [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), "src", "tests"],
            cwd=project,
        )
        assert result.returncode == 0, f"{kind}: mypy --strict\n{_explain(result)}"


# --- from an installed core wheel -----------------------------------------------------------


def test_an_installed_core_wheel_ships_the_template_and_renders_it(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    build = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert build.returncode == 0, _explain(build)
    (wheel,) = wheels.glob("cachemesh-*.whl")
    shipped = {
        name.removeprefix("cachemesh/_plugin_template/")
        for name in zipfile.ZipFile(wheel).namelist()
        if name.startswith("cachemesh/_plugin_template/")
    }
    in_checkout = {
        str(p.relative_to(ROOT / "templates" / "plugin")).replace(os.sep, "/")
        for p in (ROOT / "templates" / "plugin").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == in_checkout

    site = tmp_path / "site"
    _pip_install_into(site, [wheel], tmp_path)
    where = _run(
        [sys.executable, "-c", "from cachemesh import scaffold; print(scaffold.template_root())"],
        cwd=tmp_path,
        pythonpath=site,
    )
    assert where.stdout.strip() == str(site / "cachemesh" / "_plugin_template"), _explain(where)
    made = _run(
        [sys.executable, "-m", "cachemesh", "new-plugin", "fromwheel", "--kind", "transport"],
        cwd=tmp_path,
        pythonpath=site,
    )
    assert made.returncode == 0, _explain(made)
    project = tmp_path / "cachemesh-fromwheel"
    expected = render_plugin("fromwheel", "transport", tmp_path / "from-checkout")
    for relative in expected.files:
        assert (project / relative).read_text() == (expected.path / relative).read_text()
