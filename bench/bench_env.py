"""What every bench prints about the run: date, Python, machine, checkout and versions.

Shared by the bench scripts (run as ``python bench/<script>.py``, so this directory is on
``sys.path``), so that every table says the same things about where it came from.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def git_rev(repo: Path = REPO) -> str:
    """The commit measured, and whether core/ or plugins/ held uncommitted changes."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--", "core", "plugins"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.splitlines()
    except Exception:
        return "unknown"
    if not status:
        return rev
    untracked = sum(1 for line in status if line.startswith("??"))
    changed = len(status) - untracked
    return f"{rev} (+ uncommitted: {changed} modified, {untracked} untracked under core/ plugins/)"


def source_digest(roots: Iterable[Path], repo: Path = REPO) -> str:
    """A digest of the measured sources (the checkout may hold uncommitted changes)."""
    h = hashlib.sha256()
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        h.update(str(path.relative_to(repo)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def environment(packages: Iterable[str], **extra: Any) -> dict[str, Any]:
    """The run's context; `extra` adds fields (e.g. ``source_digest``)."""
    versions = {}
    for name in packages:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "git": git_rev(),
        **extra,
        "versions": versions,
    }
