"""Relative links in README.md and docs/ point at files that exist (and anchors at headings)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def _anchors(path: Path) -> set[str]:
    """GitHub-style anchors of a Markdown file's headings."""
    anchors = set()
    for heading in re.findall(r"(?m)^#+\s+(.*)$", FENCED.sub("", path.read_text("utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def _links() -> list[tuple[str, Path, str]]:
    found = []
    for path in DOC_FILES:
        if not path.is_file():
            continue
        text = FENCED.sub("", path.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            found.append((f"{path.relative_to(ROOT)} -> {target}", path, target))
    return found


LINKS = _links()


@pytest.mark.parametrize(
    ("source", "target"), [(p, t) for _, p, t in LINKS], ids=[i for i, _, _ in LINKS]
)
def test_relative_link_resolves(source: Path, target: str) -> None:
    file_part, _, anchor = target.partition("#")
    linked = (source.parent / file_part).resolve() if file_part else source
    assert linked.exists(), f"{source.relative_to(ROOT)} links to missing {file_part}"
    if anchor and linked.suffix == ".md":
        assert anchor in _anchors(linked), f"{linked.relative_to(ROOT)} has no heading #{anchor}"
