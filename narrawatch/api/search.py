"""``/api/v1/search``, ``/api/v1/search/export`` and ``/api/v1/documents/{id}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from narrawatch.api.deps import AppDep, Reader
from narrawatch.read import documents, search
from narrawatch.read.params import SearchParams

__all__ = ["export_response", "router"]

router = APIRouter(prefix="/api/v1")


def export_response(body: str, fmt: str, stem: str) -> Response:
    """A download: CSV or JSONL text with a filename."""
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'})


@router.get("/search", summary="Search documents (hybrid, keyword or semantic) with filters")
def search_documents(app: AppDep, who: Reader, p: Annotated[SearchParams, Query()]) -> dict[str, Any]:
    """Ranked documents (best passage each) with the offsets of query words in the passage."""
    return search.search(app, p).as_dict()


@router.get("/search/export", summary="Export search results as CSV or JSONL (up to 1000 rows)")
def search_export(
    app: AppDep,
    who: Reader,
    p: Annotated[SearchParams, Query()],
    format: Annotated[Literal["csv", "jsonl"], Query()] = "csv",
) -> Response:
    """The ranked results as a file."""
    rows = search.export_rows(app, p)
    body = search.rows_to_csv(rows, search.EXPORT_FIELDS) if format == "csv" else search.rows_to_jsonl(rows)
    return export_response(body, format, "narrawatch-search")


@router.get("/documents/{doc_id:path}", summary="One document with its passages")
def document(app: AppDep, who: Reader, doc_id: str) -> dict[str, Any]:
    """The stored document (404 if unknown)."""
    return documents.document(app, doc_id).as_dict()
