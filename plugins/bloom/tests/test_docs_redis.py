"""The Redis examples of docs/plugins/bloom.md (```py-redis blocks, which the repo's offline
docs runner skips) run against the real Redis, each under this test's own key prefix."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "plugins" / "bloom.md"
FENCE = re.compile(r"^```py-redis\n(?P<body>.*?)^```\s*$", re.M | re.S)
BLOCKS = FENCE.findall(DOC.read_text(encoding="utf-8")) if DOC.is_file() else []

pytestmark = pytest.mark.redis


def test_the_page_has_redis_examples() -> None:
    if not DOC.is_file():
        pytest.skip(f"{DOC} is not in this checkout")
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_redis_example_runs(code: str, prefix: str, redis_client: Any, tmp_path: Path) -> None:
    assert '"bloom:' in code, "examples name their keys bloom:..., renamed here per test"
    script = tmp_path / "example.py"
    script.write_text(code.replace('"bloom:', f'"{prefix}:'), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
