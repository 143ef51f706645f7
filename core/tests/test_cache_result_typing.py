"""cache_result keeps the decorated function's signature for type checkers (ParamSpec)."""

from __future__ import annotations

from pathlib import Path

import pytest

SNIPPET = """
from cachemesh import cache_result

@cache_result(timeout=60)
def name(user_id: int, *, upper: bool = False) -> str:
    return "x"

@cache_result(timeout=60)
async def age(user_id: int) -> int:
    return 1

reveal_type(name(1))
reveal_type(name.cache_key(1))
name("one")
name(1, upper="no")

async def main() -> None:
    reveal_type(await age(1))
    reveal_type(await age.invalidate(1))
    await age("one")
"""


def test_signatures_survive_the_decorator(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    source = tmp_path / "snippet.py"
    source.write_text(SNIPPET)
    out, _, _ = api.run(["--strict", "--no-incremental", "--no-error-summary", str(source)])
    lines = [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]
    revealed = [
        line.rsplit(" ", 1)[1].strip('"').removeprefix("builtins.")
        for line in lines
        if line.startswith("note: Revealed type is")
    ]
    assert revealed == ["str", "str", "int", "bool"], out
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 3, out  # the three calls with wrong argument types
    assert all("[arg-type]" in line for line in errors), out
