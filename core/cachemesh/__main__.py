"""``python -m cachemesh``: the same CLI as the ``cachemesh`` script, for environments
where the script directory is not on PATH (containers, ``pipx run``-less venvs)."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
