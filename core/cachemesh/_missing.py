"""The sentinel for "no entry", so that ``None`` stays a storable value."""

from __future__ import annotations

import enum
from typing import Final, Literal


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "cachemesh.MISSING"

    __str__ = __repr__

    def __bool__(self) -> Literal[False]:
        return False


MISSING: Final = _Missing.MISSING
MissingType = Literal[_Missing.MISSING]
