"""The mkdocs site: every page in the nav, no link out of docs/, the transports' table
true to their declared capabilities, the strict build wired into tox and CI.

`mkdocs build --strict` itself runs in `tox -e docs`; the last test here runs it too
when the docs extra is installed (`pip install -e ".[docs]"`).
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cachemesh.messaging.transport import Transport
from cachemesh.plugins import new_plugin_manager, plugin_distribution
from cachemesh.registry import ComponentRegistry

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def _nav_pages() -> list[str]:
    """The .md paths of mkdocs.yml's nav (read as text: the file uses mkdocs-only tags)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text.split("\nnav:\n", 1)
    assert len(nav) == 2, "mkdocs.yml has no top-level nav:"
    return re.findall(r"^\s+-\s+(?:[^\n]*?:\s+)?([\w./-]+\.md)\s*$", nav[1], re.M)


def _doc_pages() -> list[str]:
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


def test_every_page_is_in_the_nav() -> None:
    missing = sorted(set(_doc_pages()) - set(_nav_pages()))
    assert not missing, f"add these pages to the nav of mkdocs.yml: {missing}"


def test_every_nav_entry_exists_once() -> None:
    nav = _nav_pages()
    assert len(nav) >= 20
    absent = [page for page in nav if not (DOCS / page).is_file()]
    assert not absent, f"mkdocs.yml's nav names pages that do not exist: {absent}"
    duplicates = sorted({page for page in nav if nav.count(page) > 1})
    assert not duplicates, f"pages listed twice in the nav: {duplicates}"


def _outward_links() -> list[str]:
    found = []
    for path in DOCS.rglob("*.md"):
        text = FENCED.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://|mailto:|#", target):
                continue
            resolved = (path.parent / target.partition("#")[0]).resolve()
            if not resolved.is_relative_to(DOCS.resolve()):
                found.append(f"{path.relative_to(ROOT)} -> {target}")
    return sorted(found)


def test_no_relative_link_leaves_docs() -> None:
    """The site holds docs/ only: a link to ../README.md works on GitHub, not on the site."""
    outward = _outward_links()
    assert not outward, (
        "these links point outside docs/, which the mkdocs site does not contain; link a "
        f"page under docs/ (or include the file, as docs/changelog.md does): {outward}"
    )


# --- docs/guarantees.md's table against the transports' declared capabilities -----------


def _repo_distributions() -> set[str]:
    names = {"cachemesh"}
    for pyproject in (ROOT / "plugins").glob("*/pyproject.toml"):
        match = re.search(r'(?m)^name\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"))
        assert match, pyproject
        names.add(match.group(1))
    return names


def _transports() -> dict[str, type[Transport]]:
    pm = new_plugin_manager(load_entrypoints=True)
    registry = ComponentRegistry.from_plugin_manager(pm)
    repo = _repo_distributions()
    return {
        name: cls
        for kind, name, cls in registry.items()
        if kind == "transport" and plugin_distribution(pm, registry.provider(kind, name))[0] in repo
    }


def _table_rows() -> dict[str, list[str]]:
    text = (DOCS / "guarantees.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        match = re.match(r"^\|\s*`([\w-]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


TRANSPORTS = _transports()


def test_the_repository_has_three_transports() -> None:
    assert {"memory", "redis", "amqp"} <= set(TRANSPORTS)


@pytest.mark.parametrize("name", sorted(TRANSPORTS))
def test_guarantees_table_matches_capabilities(name: str) -> None:
    rows = _table_rows()
    assert name in rows, f"docs/guarantees.md has no row for the transport `{name}`"
    schemes, _source, guarantee, *flags = rows[name]
    cls = TRANSPORTS[name]
    caps = cls.capabilities
    assert guarantee == caps.guarantee.value, f"{name}: guarantee"
    declared = [
        "yes" if getattr(caps, f) else "no" for f in ("ordered", "priority", "delay", "reclaim")
    ]
    assert flags == declared, f"{name}: ordered/priority/delay/reclaim should read {declared}"
    assert re.findall(r"`(\w+)://`", schemes) == list(cls.schemes), f"{name}: URL schemes"


# --- the docs env in tox and CI ---------------------------------------------------------


def test_tox_has_a_strict_docs_env_and_ci_runs_it() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    assert re.search(r"(?m)^\s*docs\s*$", tox["tox"]["env_list"]), "docs not in env_list"
    env = tox["testenv:docs"]
    assert "[docs]" in env["deps"]
    assert "mkdocs build --strict" in env["commands"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    pattern = re.search(r"grep -Ex '([^']+)'", ci)
    assert pattern, ".ci/run no longer selects tox envs with grep -Ex"
    assert re.fullmatch(pattern.group(1), "docs"), ".ci/run does not select the docs env"


def test_pyproject_declares_the_docs_extra() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'(?m)^docs = \[.*"mkdocs-material>=9"', text)


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason='the docs extra is not installed (pip install -e ".[docs]"); tox -e docs builds it',
)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    result = subprocess.run(
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": str(Path(sys.executable).parent)},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site" / "reference" / "hooks" / "index.html").is_file()
