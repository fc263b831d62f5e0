"""Web pages: login, alerts inbox, narratives, search, trace, sources, themes.

Sessions: the login form exchanges an API token for a signed cookie (HttpOnly, SameSite=Strict,
12 h) that names the token's hash, so revoking the token ends its sessions. Every state-changing
form carries the session's CSRF token.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from alerts.admin import alerts_ack, alerts_show
from core.errors import UnknownNameError
from narrawatch.api import service, tracing
from narrawatch.api.auth import role_allows
from narrawatch.api.context import SESSION_COOKIE, SESSION_MAX_AGE, ApiContext, Principal, get_ctx
from narrawatch.api.errors import ApiError, LoginRequired
from narrawatch.api.schemas import AlertParams, MatchParams, SearchParams, TimeRange, TraceRequest
from narrawatch.web.render import make_env

__all__ = ["mount_web"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "nw_login"
STATIC = __import__("pathlib").Path(__file__).resolve().parent / "static"

_env = make_env()

Ctx = Annotated[ApiContext, Depends(get_ctx)]


def _user(request: Request) -> Principal:
    ctx = get_ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    who = ctx.session_principal(cookie) if cookie else None
    if who is None:
        path = request.url.path + (("?" + request.url.query) if request.url.query else "")
        raise LoginRequired(path)
    return who


User = Annotated[Principal, Depends(_user)]


def _page(request: Request, template: str, who: Principal | None, status: int = 200, **data: Any) -> HTMLResponse:
    html = _env.get_template(template).render(
        user=who,
        index_pending=bool(who) and get_ctx(request).index_pending,
        csrf=who.csrf if who else "",
        can_write=bool(who and role_allows(who.role, "analyst")),
        path=request.url.path,
        **data,
    )
    return HTMLResponse(html, status_code=status)


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _params(request: Request, multi: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in request.query_params:
        if key in multi:
            out[key] = [v for v in request.query_params.getlist(key) if v]
        else:
            value = request.query_params.get(key)
            if value:
                out[key] = value
    return out


async def _form(request: Request, who: Principal) -> dict[str, str]:
    form = await request.form()
    sent = str(form.get("csrf", ""))
    if not who.csrf or not hmac.compare_digest(sent, who.csrf):
        raise ApiError(403, "the form expired or did not come from this site; reload the page and try again")
    return {k: str(v) for k, v in form.items()}


def _require_analyst(who: Principal) -> None:
    if not role_allows(who.role, "analyst"):
        raise ApiError(403, f"this needs the 'analyst' role; you are signed in as '{who.name}' ({who.role})")


def _safe_next(value: str) -> str:
    return value if value.startswith("/") and not value.startswith("//") and "\\" not in value else "/alerts"


def render_error(request: Request, status: int, message: str) -> Response:
    """The HTML error page (installed as ``app.state.render_error``)."""
    ctx = get_ctx(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    who = ctx.session_principal(cookie) if cookie else None
    return _page(request, "error.html", who, status=status, status_code=status, message=message, title="Error")


def mount_web(api: FastAPI, ctx: ApiContext) -> None:
    """Add the pages and ``/static`` to the API app."""
    api.state.render_error = render_error
    api.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @api.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/alerts", status_code=303)

    @api.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/alerts", error: str = "") -> Response:
        nonce = secrets.token_urlsafe(24)
        resp = _page(request, "login.html", None, next=_safe_next(next), nonce=nonce, error=error, title="Sign in")
        resp.set_cookie(
            LOGIN_COOKIE, nonce, max_age=900, httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return resp

    @api.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        sent = str(form.get("nonce", ""))
        target = _safe_next(str(form.get("next", "/alerts")))
        if not nonce or not hmac.compare_digest(nonce, sent):
            return RedirectResponse("/login?error=expired&next=" + target, status_code=303)
        token = str(form.get("token", "")).strip()
        info = get_ctx(request).tokens.verify(token) if token else None
        if info is None or not info.active:
            log.warning("web login refused (%s)", "revoked token" if info else "unknown token")
            request.state.auth_failed = True  # counted by the rate limit (narrawatch.api.guards)
            return RedirectResponse("/login?error=invalid&next=" + target, status_code=303)
        value, _ = get_ctx(request).session_cookie(info.token_hash)
        resp = RedirectResponse(target, status_code=303)
        resp.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=SESSION_MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        resp.delete_cookie(LOGIN_COOKIE)
        log.info("web login: %s (%s)", info.name, info.role)
        return resp

    @api.post("/logout", include_in_schema=False)
    async def logout(request: Request, who: User) -> Response:
        await _form(request, who)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE)
        return resp

    # -- alerts -----------------------------------------------------------------------------------

    @api.get("/alerts", include_in_schema=False)
    def alerts_page(request: Request, ctx: Ctx, who: User) -> Response:
        raw = _params(request)
        raw.setdefault("limit", "100")
        raw["unacked"] = raw.get("unacked") in ("1", "true", "on")
        error = ""
        try:
            p = AlertParams.model_validate(raw)
            rows = service.alerts_page(ctx, p)
        except ValidationError as exc:
            error, rows, p = _errors(exc), [], AlertParams.model_validate({})
        rules = sorted({r.id for r in _rules(ctx)} | {r["rule"] for r in rows})
        return _page(request, "alerts.html", who, title="Alerts", alerts=rows, params=p, rules=rules, error=error)

    @api.get("/alerts/{alert_id}", include_in_schema=False)
    def alert_page(request: Request, ctx: Ctx, who: User, alert_id: str) -> Response:
        try:
            alert = alerts_show(ctx.config, alert_id)
        except UnknownNameError:
            raise ApiError(404, f"no alert {alert_id!r}") from None
        for event in alert.get("events", []):
            service.annotate_evidence(ctx, event.get("evidence", []))
        return _page(request, "alert.html", who, title=alert["title"], alert=alert)

    @api.post("/alerts/{alert_id}/ack", include_in_schema=False)
    async def alert_ack(request: Request, ctx: Ctx, who: User, alert_id: str) -> Response:
        form = await _form(request, who)
        _require_analyst(who)
        try:
            alerts_ack(ctx.config, alert_id, by=who.name, note=str(form.get("note", ""))[:500])
        except UnknownNameError:
            raise ApiError(404, f"no alert {alert_id!r}") from None
        back = _safe_next(form.get("back", "/alerts"))
        return RedirectResponse(back, status_code=303)

    @api.post("/matches/{match_id}/verdict", include_in_schema=False)
    async def match_verdict(request: Request, ctx: Ctx, who: User, match_id: str) -> Response:
        form = await _form(request, who)
        _require_analyst(who)
        from starlette.concurrency import run_in_threadpool

        from monitors.verdicts import record_verdict
        from narrawatch.api.schemas import VerdictRequest

        try:
            req = VerdictRequest.model_validate({"verdict": form.get("verdict", ""), "note": form.get("note", "")})
        except ValidationError as exc:
            raise ApiError(422, _errors(exc)) from None
        await run_in_threadpool(record_verdict, ctx.matches, match_id, req.verdict, analyst=who.name, note=req.note)
        back = _safe_next(form.get("back", "/alerts"))
        return RedirectResponse(f"{back}#match-{match_id}" if "#" not in back else back, status_code=303)

    # -- narratives -------------------------------------------------------------------------------

    @api.get("/narratives", include_in_schema=False)
    def narratives_page(request: Request, ctx: Ctx, who: User) -> Response:
        error = ""
        try:
            t = TimeRange.model_validate(_window(request))
        except ValidationError as exc:
            error, t = _errors(exc), TimeRange.model_validate({})
        rows = service.narratives_overview(ctx, t.since, t.until)
        charts = {r["id"]: r["timeline"] for r in rows}
        return _page(request, "narratives.html", who, title="Narratives", narratives=rows, charts=charts, error=error)

    @api.get("/narratives/{narrative_id}", include_in_schema=False)
    def narrative_page(request: Request, ctx: Ctx, who: User, narrative_id: str) -> Response:
        raw = _params(request, ("outlets", "languages"))
        try:
            p = MatchParams.model_validate(raw)
        except ValidationError as exc:
            raise ApiError(422, _errors(exc)) from None
        n = service.narrative_detail(ctx, narrative_id, p)
        return _page(request, "narrative.html", who, title=n["title"], n=n, params=raw)

    # -- search and documents ---------------------------------------------------------------------

    @api.get("/search", include_in_schema=False)
    def search_page(request: Request, ctx: Ctx, who: User) -> Response:
        raw = _params(request, ("sources", "languages", "kinds"))
        result: dict[str, Any] | None = None
        error = ""
        if raw.get("q"):
            try:
                result = service.run_search(ctx, SearchParams.model_validate(raw))
            except ValidationError as exc:
                error = _errors(exc)
        try:
            langs = sorted(ctx.app.index.count("language"))
        except Exception:
            langs = []
        sources = [s.id for s in ctx.config.sources]
        return _page(
            request,
            "search.html",
            who,
            title="Search",
            result=result,
            params=raw,
            error=error,
            languages=langs,
            sources=sources,
            export_query=_export_query(raw),
        )

    @api.get("/documents/{doc_id:path}", include_in_schema=False)
    def document_page(request: Request, ctx: Ctx, who: User, doc_id: str) -> Response:
        doc = service.document_detail(ctx, doc_id)
        return _page(request, "document.html", who, title=doc["title"] or doc["id"], doc=doc)

    # -- trace ------------------------------------------------------------------------------------

    @api.get("/trace", include_in_schema=False)
    def trace_page(request: Request, ctx: Ctx, who: User) -> Response:
        raw = _params(request, ("languages", "sources"))
        result: dict[str, Any] | None = None
        error = ""
        if any(raw.get(k) for k in ("claim", "url", "document_id", "narrative_id")):
            try:
                result = tracing.run_trace(ctx, TraceRequest.model_validate(raw))
            except ValidationError as exc:
                error = _errors(exc)
            except ApiError as exc:
                error = exc.message
        items = {it["document_id"]: it for it in (result or {}).get("items", [])}
        return _page(
            request,
            "trace.html",
            who,
            title="Trace",
            result=result,
            items=items,
            params=raw,
            error=error,
            narratives=[(n.id, n.title) for n in ctx.catalogue.narratives],
            export_query=_export_query(raw),
        )

    # -- sources and themes -----------------------------------------------------------------------

    @api.get("/sources", include_in_schema=False)
    def sources_page(request: Request, ctx: Ctx, who: User) -> Response:
        rows = service.sources_health(ctx)
        return _page(request, "sources.html", who, title="Sources", sources=rows)

    @api.get("/themes", include_in_schema=False)
    def themes_page(request: Request, ctx: Ctx, who: User, promoted: str = "") -> Response:
        error = ""
        themes: list[dict[str, Any]] = []
        try:
            t = TimeRange.model_validate(_window(request))
            themes = tracing.list_themes(ctx, t.since, t.until)
        except ValidationError as exc:
            error = _errors(exc)
        except ApiError as exc:
            error = exc.message
        return _page(request, "themes.html", who, title="Themes", themes=themes, error=error, promoted=promoted)

    @api.post("/themes/{theme_id}/promote", include_in_schema=False)
    async def theme_promote(request: Request, ctx: Ctx, who: User, theme_id: str) -> Response:
        form = await _form(request, who)
        _require_analyst(who)
        from starlette.concurrency import run_in_threadpool

        from narrawatch.api.schemas import PromoteRequest

        try:
            req = PromoteRequest.model_validate({"narrative_id": form.get("narrative_id", "")})
        except ValidationError as exc:
            raise ApiError(422, _errors(exc)) from None
        out = await run_in_threadpool(tracing.promote, ctx, theme_id, req.narrative_id)
        from urllib.parse import quote

        return RedirectResponse("/themes?promoted=" + quote(out["path"]), status_code=303)


def _window(request: Request) -> dict[str, Any]:
    return {k: v for k, v in _params(request).items() if k in ("since", "until")}


def _rules(ctx: ApiContext) -> list[Any]:
    from alerts.admin import alerts_config

    return list(alerts_config(ctx.config).rules)


def _export_query(raw: dict[str, Any]) -> str:
    from narrawatch.web.render import _query

    keep = {k: v for k, v in raw.items() if k not in ("page", "page_size", "format")}
    return _query(keep)
