"""Every ```python block of README.md and docs/ runs on its own, in a fresh directory.

Blocks run in a subprocess with the in-memory defaults: no network, no config file, no
``.env``, no ``CACHEMESH_*``/``CACHE_*``/``REDIS_*`` variables from the developer's shell.
Non-runnable snippets use ```toml, ```bash or ```text fences instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(
    r"^(?P<indent>[ ]{0,3})```(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.M | re.S,
)
ENV_PREFIXES = ("CACHEMESH_", "CACHE_", "REDIS_", "CELERY_")


def _blocks() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for path in DOC_FILES:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match.group("lang") in ("python", "py"):
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{path.relative_to(ROOT)}:{line}", match.group("body")))
    return found


BLOCKS = _blocks()


def test_the_docs_have_examples() -> None:
    assert any(where.startswith("README.md:") for where, _ in BLOCKS)
    assert len(BLOCKS) >= 10


@pytest.mark.parametrize("code", [code for _, code in BLOCKS], ids=[where for where, _ in BLOCKS])
def test_example_runs(code: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (
        f"example exited {result.returncode}\n--- code ---\n{code}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
