"""Every name `from cachemesh import ...` resolves lazily is also visible to type checkers.

Without the ``TYPE_CHECKING`` import, mypy sees ``cachemesh.MessageRouter`` as ``Any`` (the
module's ``__getattr__``), and subclassing it as the guide does fails ``mypy --strict``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cachemesh
from cachemesh import _lazy

INIT = Path(cachemesh.__file__)


def _names_bound_at_top_level_or_for_type_checkers() -> set[str]:
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in tree.body:
        blocks = [node]
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            blocks = list(node.body)
        for block in blocks:
            if isinstance(block, ast.ImportFrom):
                names.update(alias.asname or alias.name for alias in block.names)
    return names


def test_every_lazy_name_is_imported_for_type_checkers() -> None:
    missing = set(_lazy.PROVIDED_BY) - _names_bound_at_top_level_or_for_type_checkers()
    assert not missing, f"add to the TYPE_CHECKING block of {INIT}: {sorted(missing)}"
