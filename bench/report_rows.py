"""One row of bench/report.py's table, whatever JSON it was read from."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

PASS, MISS = "pass", "MISS"


@dataclass(frozen=True)
class Row:
    """One comparison of the table."""

    benchmark: str
    comparison: str
    #: The other side: a peer library, raw redis-py, or cachemesh itself without a feature.
    peer: str
    #: cachemesh speed ÷ the other side's (> 1: cachemesh faster); None when not a speed.
    ratio: float | None
    #: The least speed ratio that passes (None: no target, or not a speed target).
    target: float | None = None
    #: The target as its script states it, with its figure ("" when there is no target).
    stated: str = ""
    #: PASS, MISS, or None when there is no target.
    verdict: str | None = None
    #: The range of the per-repeat ratios, when the script gives it (speed terms).
    low: float | None = None
    high: float | None = None
    #: Why there is no figure (a row the script's JSON no longer has).
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
