"""``/api/v1/search``, ``/api/v1/search/export`` and ``/api/v1/documents/{id}``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from narrawatch.api.deps import AppDep, Reader
from narrawatch.read import documents, search
from narrawatch.read.params import SearchParams

__all__ = ["export_response", "router"]

router = APIRouter(prefix="/api/v1")


def _media(fmt: str) -> str:
    return "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson; charset=utf-8"


def export_response(body: str, fmt: str, stem: str) -> Response:
    """A download: CSV or JSONL text with a filename."""
    return Response(
        body, media_type=_media(fmt), headers={"Content-Disposition": f'attachment; filename="{stem}.{fmt}"'}
    )


@router.get(
    "/search",
    summary="Search documents (hybrid, keyword or semantic) with the query syntax, filters, sort and facets",
)
def search_documents(app: AppDep, who: Reader, p: Annotated[SearchParams, Query()]) -> dict[str, Any]:
    """A page of results (copies grouped under their first appearance) with ``total``, facets
    and the offsets of query words in each passage. 400 for a query that does not parse or a
    filter value that names nothing known (the message lists the known values)."""
    return search.search(app, p).as_dict()


@router.get("/search/export", summary="Export search results as CSV or JSONL (streamed, no row cap)")
def search_export(
    app: AppDep,
    who: Reader,
    p: Annotated[SearchParams, Query()],
    format: Annotated[Literal["csv", "jsonl"], Query()] = "csv",
) -> Response:
    """Every result as a streamed file: an original then its copies (``copy_of``). The query is
    parsed and its filters checked before the first byte, so errors are still 400."""
    rows = search.export_rows(app, p)
    first = next(rows, None)  # runs the search now: its errors become statuses, not a torn body

    def all_rows() -> Iterator[dict[str, Any]]:
        if first is not None:
            yield first
            yield from rows

    body = search.iter_csv(all_rows(), search.EXPORT_FIELDS) if format == "csv" else search.iter_jsonl(all_rows())
    return StreamingResponse(
        body,
        media_type=_media(format),
        headers={"Content-Disposition": f'attachment; filename="narrawatch-search.{format}"'},
    )


@router.get("/documents/{doc_id:path}", summary="One document with its passages")
def document(app: AppDep, who: Reader, doc_id: str) -> dict[str, Any]:
    """The stored document (404 if unknown)."""
    return documents.document(app, doc_id).as_dict()
