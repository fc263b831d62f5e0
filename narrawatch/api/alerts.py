"""``/api/v1/alerts``: the inbox, one alert, acknowledgement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from narrawatch.api.deps import Analyst, AppDep, Reader
from narrawatch.api.schemas import AckRequest
from narrawatch.http.errors import HttpError
from narrawatch.read import alerts
from narrawatch.read.params import AlertParams

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


@router.get("/alerts", summary="Alerts, newest first")
def list_alerts(app: AppDep, who: Reader, p: Annotated[AlertParams, Query()]) -> list[dict[str, Any]]:
    """Filtered by rule, severity, unacknowledged and time."""
    rows = alerts.list_alerts(app, p)
    return [r.as_dict() for r in rows]


@router.get("/alerts/{alert_id}", summary="One alert with its events, evidence and deliveries")
def show_alert(app: AppDep, who: Reader, alert_id: str) -> dict[str, Any]:
    """404 if unknown."""
    return alerts.show_alert(app, alert_id).as_dict()


@router.post("/alerts/{alert_id}/ack", summary="Acknowledge an alert (analyst)")
def ack(app: AppDep, who: Analyst, alert_id: str, body: Annotated[AckRequest | None, Body()] = None) -> dict[str, Any]:
    """Marks the alert acknowledged by the token's name with the body's ``note``; ``changed`` is false
    if it already was (the first acknowledgement and its note stand)."""
    result = alerts.ack_alert(app, alert_id, by=who.name, note=body.note if body else "")
    if result.acked_at is None:
        raise HttpError(500, "acknowledgement was not stored")
    return result.as_dict()
