"""Request bodies only the API takes (pydantic at the edge, unknown keys rejected).

The query parameters shared with the web pages and the CLI (search, matches, alerts, trace,
promote, verdict) are defined once in :mod:`narrawatch.read.params`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from narrawatch.read.params import TraceRequest

__all__ = ["AckRequest", "ErrorBody", "TraceBody", "VerdictParams"]


class AckRequest(BaseModel):
    """``POST /api/v1/alerts/{id}/ack`` (body optional)."""

    model_config = ConfigDict(extra="forbid")
    note: Annotated[str, Field(max_length=500)] = ""


class TraceBody(TraceRequest):
    """``POST /api/v1/trace`` body (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")


class VerdictParams(BaseModel):
    """``GET /api/v1/verdicts`` and ``/verdicts/export``."""

    model_config = ConfigDict(extra="ignore")
    narrative: Annotated[str | None, Field(max_length=100)] = None
    verdict: Literal["confirmed", "rejected"] | None = None
    limit: Annotated[int, Field(ge=1, le=10_000)] = 500


class ErrorBody(BaseModel):
    """Every error: ``{"error": {"code": ..., "message": ...}}``."""

    error: dict[str, str]
