"""The README gives exactly two set-up commands for a fresh clone, and both point at real things."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECTION = "## Set up from a fresh clone"
DEMO_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -e . -e plugins/memory-lru -e plugins/ttl "
    "-e plugins/redis-backend -e plugins/bloom -e plugins/notification-router "
    "-e plugins/kombu-transport -e plugins/prometheus-metrics "
    "-e plugins/multi-level -e plugins/celery-tasks "
    "&& .venv/bin/cachemesh demo"
)
TEST_COMMAND = "bash scripts/test-all.sh"
FENCE = re.compile(r"^```[\w-]*\n(.*?)^```\s*$", re.M | re.S)


def _setup_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README.md needs a '{SECTION}' section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = FENCE.findall(section)
    commands = []
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip()]
        assert len(lines) == 1, f"each set-up command is one line a user pastes, got {lines}"
        commands.append(lines[0].strip())
    return commands


def test_readme_has_exactly_the_two_commands() -> None:
    assert _setup_commands() == [DEMO_COMMAND, TEST_COMMAND]


def test_demo_command_installs_every_in_repo_plugin() -> None:
    installed = set(re.findall(r"-e (plugins/[\w.-]+)", DEMO_COMMAND))
    plugins = {f"plugins/{p.parent.name}" for p in (ROOT / "plugins").glob("*/pyproject.toml")}
    assert installed == plugins


def test_demo_command_targets_the_cli() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'(?m)^cachemesh\s*=\s*"cachemesh\.cli:main"', text)


def test_test_script_exists_and_parses() -> None:
    script = ROOT / "scripts" / "test-all.sh"
    assert script.is_file()
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    subprocess.run([bash, "-n", str(script)], check=True)


def test_ci_runs_the_readme_test_command() -> None:
    ci = ROOT / ".ci" / "run"
    assert ci.is_file()
    assert os.access(ci, os.X_OK), ".ci/run must be executable"
    assert TEST_COMMAND in ci.read_text(encoding="utf-8")


def test_demo_runs_without_services(tmp_path: Path) -> None:
    """The demo part of the first command, in this environment (no Redis, no config file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHEMESH_", "CACHE_"))}
    result = subprocess.run(
        [sys.executable, "-m", "cachemesh", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
