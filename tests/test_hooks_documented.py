"""Every hook spec is documented in docs/hooks.md (exact parameters) and exercised by a test.

The datasette pattern: a hook added to ``cachemesh.hookspecs`` without a section in the docs,
or without a ``test_hook_<hook name>`` test function, fails here.
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from cachemesh import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = ROOT / "docs" / "hooks.md"
TEST_DIRS = (ROOT / "core" / "tests", ROOT / "tests")

HOOKS = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("cachemesh_") and inspect.isfunction(obj)
)


def _spec_options(name: str) -> dict[str, object]:
    opts = getattr(getattr(hookspecs, name), "cachemesh_spec", None)
    assert opts is not None, f"{name} in cachemesh.hookspecs is not marked as a hook spec"
    return dict(opts)


def _doc_sections() -> dict[str, str]:
    """Text of docs/hooks.md by hook: from its ``### `cachemesh_...` `` heading to the next."""
    text = HOOKS_DOC.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    parts = re.split(r"(?m)^###\s+`?(cachemesh_\w+)`?\s*$", text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[name] = body.split("\n## ", 1)[0]
    return sections


def _documented_parameters(name: str, section: str) -> list[str]:
    """Parameter names of the signature written as inline code: `` `name(a: T, b) -> R` ``."""
    match = re.search(rf"`({name}\([^`]*\)(?:\s*->\s*[^`]+)?)`", section)
    assert match, f"docs/hooks.md, section {name}: no signature written as `{name}(...) -> ...`"
    tree = ast.parse(f"def {match.group(1)}: ...")
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    return [arg.arg for arg in func.args.args]


def test_there_are_hooks() -> None:
    assert "cachemesh_register_backends" in HOOKS
    assert "cachemesh_on_backend_error" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented_with_its_exact_parameters(hook: str) -> None:
    sections = _doc_sections()
    assert hook in sections, f"docs/hooks.md has no '### `{hook}`' section"
    expected = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert _documented_parameters(hook, sections[hook]) == expected


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_semantics_are_documented(hook: str) -> None:
    section = _doc_sections()[hook]
    opts = _spec_options(hook)
    for flag in ("firstresult", "historic"):
        if opts.get(flag):
            assert flag in section, f"docs/hooks.md, {hook}: say that the hook is {flag}"
    assert "```python" in section, f"docs/hooks.md, {hook}: give an example implementation"


def test_docs_document_no_hook_that_does_not_exist() -> None:
    assert sorted(_doc_sections()) == HOOKS


def _test_sources() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8")
        for directory in TEST_DIRS
        for path in sorted(directory.rglob("*.py"))
    )


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_test(hook: str) -> None:
    pattern = rf"(?m)^\s*(?:async\s+)?def\s+test_hook_{hook}\s*\("
    assert re.search(pattern, _test_sources()), (
        f"no test function named test_hook_{hook} under core/tests or tests"
    )
