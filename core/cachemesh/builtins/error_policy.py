"""The core's default answer to `cachemesh_on_backend_error`: the CACHE_ON_BACKEND_ERROR setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..fallback import ErrorDecision
from ..plugins import hookimpl

if TYPE_CHECKING:
    from ..config import CacheConfig


@hookimpl(trylast=True)
def cachemesh_on_backend_error(
    backend: str, operation: str, key: str, error: BaseException, config: CacheConfig
) -> ErrorDecision:
    return ErrorDecision(config.CACHE_ON_BACKEND_ERROR)
