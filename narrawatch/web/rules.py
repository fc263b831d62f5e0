"""The rules page: alert rules and saved searches (list, form, dry-run result, delete).

YAML rules are shown read-only; analysts create, edit, test and delete stored rules here
(:mod:`narrawatch.read.rules`). Every form is CSRF-checked and needs the analyst role to save
or delete; "Test" runs the form's rule over stored documents without saving or raising anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from core.errors import ConflictError, InvalidRequestError, NotFoundError, UnknownNameError
from core.settings import ACTOR_TYPES, parse_when
from narrawatch.app import App
from narrawatch.http.errors import HttpError
from narrawatch.http.session import get_app
from narrawatch.read import rules
from narrawatch.rules_store import validate_rule
from narrawatch.web.page import User, form, page, require_analyst

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

AppDep = Annotated[App, Depends(get_app)]
_LIST_FIELDS = ("languages", "kinds", "countries")


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]


def _rule_data(data: dict[str, str], multi: dict[str, list[str]]) -> dict[str, Any]:
    """The rule the form describes (the saved-search fields; other detectors keep their options)."""
    options: dict[str, Any] = {"query": data.get("query", ""), "mode": data.get("mode", "keyword")}
    if data.get("min_score", "").strip():
        try:
            options["min_score"] = float(data["min_score"])
        except ValueError:
            options["min_score"] = data["min_score"]
    if data.get("group") in ("item", "pass"):
        options["group"] = data["group"]
    for key in ("languages", "kinds"):
        if _split(data.get(key, "")):
            options[key] = _split(data.get(key, ""))
    out: dict[str, Any] = {
        "id": data.get("id", "").strip(),
        "detector": "query",
        "options": options,
        "severity": data.get("severity", "warning"),
        "description": data.get("description", ""),
        "enabled": data.get("enabled") == "on",
    }
    if multi.get("sources"):
        out["sources"] = multi["sources"]
    if multi.get("actors"):
        out["actors"] = multi["actors"]
    if _split(data.get("countries", "")):
        out["countries"] = [c.upper() for c in _split(data.get("countries", ""))]
    for key in ("realert",):
        if data.get(key, "").strip():
            out[key] = data[key].strip()
    if data.get("digest", "").strip():
        out["digest"] = {"every": data["digest"].strip()}
    return out


def _form_values(rule: dict[str, Any]) -> dict[str, Any]:
    o = rule.get("options") or {}
    digest = rule.get("digest") or {}
    return {
        "id": rule.get("id", ""),
        "query": o.get("query", ""),
        "mode": o.get("mode", "keyword"),
        "min_score": o.get("min_score", ""),
        "group": o.get("group", "item"),
        "languages": ", ".join(o.get("languages") or ()),
        "kinds": ", ".join(o.get("kinds") or ()),
        "sources": list(rule.get("sources") or ()) if rule.get("sources") != "all" else [],
        "actors": list(rule.get("actors") or ()) if rule.get("actors") != "all" else [],
        "countries": ", ".join(rule.get("countries") or ()) if rule.get("countries") != "all" else "",
        "severity": rule.get("severity", "warning"),
        "realert": rule.get("realert", ""),
        "digest": digest.get("every", "") if isinstance(digest, dict) else "",
        "description": rule.get("description", ""),
        "enabled": rule.get("enabled", True),
    }


def _since(text: str | None) -> datetime:
    now = datetime.now(UTC)
    try:
        return parse_when(text or "30d") or now - timedelta(days=30)
    except ValueError as exc:
        raise InvalidRequestError(f"since: {exc}") from None


def _render(
    request: Request,
    app: App,
    who: Any,
    *,
    values: dict[str, Any] | None = None,
    editing: str = "",
    result: dict[str, Any] | None = None,
    error: str = "",
    notice: str = "",
    status: int = 200,
) -> Response:
    listed = [r.as_dict() for r in rules.list_rules(app)]
    return page(
        request,
        "rules.html",
        who,
        status=status,
        title="Rules",
        rules=listed,
        values=values or _form_values({"enabled": True}),
        editing=editing,
        result=result,
        error=error,
        notice=notice,
        sources=[s.id for s in app.config.sources],
        actors=ACTOR_TYPES,
    )


@router.get("/rules")
def rules_page(request: Request, app: AppDep, who: User, edit: str = "", notice: str = "") -> Response:
    """Every rule; ``?edit=ID`` fills the form with a stored rule."""
    values = None
    if edit:
        try:
            record = rules.get_rule(app, edit).as_dict()
        except UnknownNameError:
            raise HttpError(404, f"no rule {edit!r}") from None
        if not record["editable"]:
            raise HttpError(409, f"rule {edit!r} is defined in the YAML config; edit the YAML file instead")
        values = _form_values(record)
    messages = {"saved": "Rule saved: the service runs it from its next pass.", "deleted": "Rule deleted."}
    return _render(request, app, who, values=values, editing=edit, notice=messages.get(notice, ""))


@router.get("/rules/{rule_id}/test")
async def rule_test_page(request: Request, app: AppDep, who: User, rule_id: str, since: str = "30d") -> Response:
    """What a saved rule would have raised since ``since`` (nothing is raised)."""
    try:
        result = await run_in_threadpool(lambda: rules.dry_run_rule(app, rule_id, _since(since)).as_dict())
    except UnknownNameError:
        raise HttpError(404, f"no rule {rule_id!r}") from None
    except InvalidRequestError as exc:
        return _render(request, app, who, error=str(exc), status=422)
    return _render(request, app, who, result=result)


@router.post("/rules")
async def rules_save(request: Request, app: AppDep, who: User) -> Response:
    """Save (create or edit) or test the form's saved search."""
    data = await form(request, who)
    raw = await request.form()
    multi = {k: [str(v) for v in raw.getlist(k) if str(v)] for k in ("sources", "actors")}
    rule = _rule_data(data, multi)
    editing = data.get("editing", "")
    values = {**_form_values(rule), "id": rule["id"] or editing}
    if data.get("action") == "test":
        try:
            settings = validate_rule({**rule, "id": rule["id"] or editing or "unsaved"}, app.alerts_config)
            since = _since(data.get("since"))
            result = await run_in_threadpool(lambda: rules.dry_run_rule(app, settings, since).as_dict())
        except InvalidRequestError as exc:
            return _render(request, app, who, values=values, editing=editing, error=str(exc), status=422)
        return _render(request, app, who, values=values, editing=editing, result=result)
    require_analyst(who)
    try:
        if editing:
            rules.update_rule(app, editing, {**rule, "id": editing}, by=who.name)
        else:
            rules.create_rule(app, rule, by=who.name)
    except (InvalidRequestError, ConflictError, NotFoundError) as exc:
        status = 409 if isinstance(exc, ConflictError) else 404 if isinstance(exc, NotFoundError) else 422
        return _render(request, app, who, values=values, editing=editing, error=str(exc), status=status)
    return RedirectResponse("/rules?notice=saved", status_code=303)


@router.post("/rules/{rule_id}/delete")
async def rules_delete(request: Request, app: AppDep, who: User, rule_id: str) -> Response:
    """Delete a stored rule (analyst)."""
    await form(request, who)
    require_analyst(who)
    try:
        rules.delete_rule(app, rule_id, by=who.name)
    except NotFoundError:
        raise HttpError(404, f"no stored rule {rule_id!r}") from None
    except ConflictError as exc:
        raise HttpError(409, str(exc)) from None
    return RedirectResponse("/rules?notice=deleted", status_code=303)
