"""``/api/v1/sources``: crawl health of every source."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from narrawatch.api.deps import AppDep, Reader
from narrawatch.read import sources

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


@router.get("/sources", summary="Crawl health of every source, failing first")
def source_health(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Per source: status, last success/error, failures in a row, items in 24 h, documents indexed."""
    return [s.as_dict() for s in sources.source_health(app)]
