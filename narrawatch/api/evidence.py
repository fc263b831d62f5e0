"""``/api/v1/alerts/{id}/evidence`` and ``/api/v1/documents/{id}/evidence``: evidence packs (zip)."""

from __future__ import annotations

import re

from fastapi import APIRouter
from fastapi.responses import Response

from narrawatch.api.deps import AppDep, Reader
from narrawatch.evidence import alert_pack, document_pack

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


def _zip(data: bytes, kind: str, ident: str) -> Response:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", ident)[:80] or "pack"
    return Response(
        content=data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="evidence-{kind}-{name}.zip"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/alerts/{alert_id}/evidence",
    summary="Evidence pack of an alert (zip: WARC records, manifest.json, summary.html, SHA256SUMS)",
    response_class=Response,
)
def alert_evidence(app: AppDep, who: Reader, alert_id: str) -> Response:
    """404 if the alert is unknown; verify the pack with ``narrawatch evidence verify``."""
    return _zip(alert_pack(app, alert_id), "alert", alert_id)


@router.get(
    "/documents/{document_id:path}/evidence",
    summary="Evidence pack of a document (all versions and captures)",
    response_class=Response,
)
def document_evidence(app: AppDep, who: Reader, document_id: str) -> Response:
    """404 if the document is unknown."""
    return _zip(document_pack(app, document_id), "document", document_id)
