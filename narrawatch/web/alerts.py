"""The alerts inbox, one alert (its evidence with verdict boxes) and the acknowledge form."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from core.errors import UnknownNameError
from narrawatch.app import App
from narrawatch.http.errors import HttpError, validation_message
from narrawatch.http.session import get_app
from narrawatch.read import alerts
from narrawatch.read.narratives import annotate_evidence
from narrawatch.read.params import AlertParams
from narrawatch.web.page import User, form, page, params, require_analyst, safe_next

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]


@router.get("/alerts")
def inbox(request: Request, app: AppDep, who: User) -> Response:
    """Alerts newest first, filtered by rule, severity, acknowledgement and time."""
    raw = params(request)
    raw.setdefault("limit", "100")
    raw["unacked"] = raw.get("unacked") in ("1", "true", "on")
    error = ""
    rows: list[dict[str, Any]] = []
    try:
        p = AlertParams.model_validate(raw)
        listed = alerts.list_alerts(app, p)
        rows = [r.as_dict() for r in listed]
    except ValidationError as exc:
        error, p = validation_message(exc), AlertParams.model_validate({})
    rules = sorted({r.id for r in app.alerts_config.rules} | {r["rule"] for r in rows})
    return page(request, "alerts.html", who, title="Alerts", alerts=rows, params=p, rules=rules, error=error)


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, app: AppDep, who: User, alert_id: str) -> Response:
    """One alert: events, evidence (with verdicts), deliveries, acknowledgement."""
    try:
        alert = alerts.show_alert(app, alert_id).as_dict()
    except UnknownNameError:
        raise HttpError(404, f"no alert {alert_id!r}") from None
    events = alert.get("events", [])
    for event in events:
        annotate_evidence(app, event.get("evidence", []))
        # Title and summary once: a single-event alert's title and summary are its event's.
        event["show_title"] = event.get("title") != alert["title"]
        event["show_summary"] = bool(event.get("summary")) and event.get("summary") != alert["summary"]
    # A digest's summary is its events' titles joined, and each event is shown with its title.
    alert["show_summary"] = bool(alert.get("summary")) and not (alert.get("digest") and len(events) > 1)
    return page(request, "alert.html", who, title=alert["title"], alert=alert)


@router.post("/alerts/{alert_id}/ack")
async def alert_ack(request: Request, app: AppDep, who: User, alert_id: str) -> Response:
    """Acknowledge with an optional note (analyst), then back to where the form was."""
    data = await form(request, who)
    require_analyst(who)
    try:
        alerts.ack_alert(app, alert_id, by=who.name, note=str(data.get("note", ""))[:500])
    except UnknownNameError:
        raise HttpError(404, f"no alert {alert_id!r}") from None
    return RedirectResponse(safe_next(data.get("back", "/alerts")), status_code=303)
