"""``/api/v1/rules``: alert rules and saved searches; reading needs a token, writing the analyst role.

YAML rules are listed read-only (``origin: yaml``, ``editable: false``); rules created here are
stored in the state directory and run by the service from its next pass, without a restart.
A rule's JSON is the YAML's fields (``id``, ``detector``, ``options``, ``sources``, ``actors``,
``countries``, ``severity``, ``realert``, ``digest``, ``channels``, ``enabled``, ``description``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from narrawatch.api.deps import Analyst, AppDep, Reader
from narrawatch.read import rules
from narrawatch.read.params import When

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")

RuleBody = Annotated[
    dict[str, Any],
    Body(
        examples=[
            {
                "id": "watch-oreshnik",
                "detector": "query",
                "options": {"query": '"Орешник" OR "ядерный удар" -учения', "min_score": 0},
                "actors": ["state_media"],
                "severity": "warning",
                "realert": "6h",
            }
        ]
    ),
]


class DryRunParams(BaseModel):
    """``since`` (default 30 days back) and ``step`` in seconds (match-based detectors)."""

    model_config = ConfigDict(extra="ignore")
    since: When = None
    step: Annotated[int, Field(ge=1, le=7 * 86400)] = 3600


def _dry(app: Any, rule: Any, p: DryRunParams) -> dict[str, Any]:
    now = datetime.now(UTC)
    since = p.since or now - timedelta(days=30)
    return rules.dry_run_rule(app, rule, since, now=now, step=timedelta(seconds=p.step)).as_dict()


@router.get("/rules", summary="Alert rules: YAML (read-only) and stored")
def list_rules(app: AppDep, who: Reader) -> list[dict[str, Any]]:
    """Every rule with ``origin`` and ``editable``."""
    return [r.as_dict() for r in rules.list_rules(app)]


@router.get("/rules/{rule_id}", summary="One rule")
def get_rule(app: AppDep, who: Reader, rule_id: str) -> dict[str, Any]:
    """404 if unknown."""
    return rules.get_rule(app, rule_id).as_dict()


@router.post("/rules", status_code=201, summary="Create a rule, e.g. a saved search (analyst)")
def create_rule(app: AppDep, who: Analyst, body: RuleBody) -> dict[str, Any]:
    """Validated in full (422 lists every problem as ``path: message``); 409 if the id is taken."""
    return rules.create_rule(app, body, by=who.name).as_dict()


@router.put("/rules/{rule_id}", summary="Replace a stored rule's fields (analyst)")
def update_rule(app: AppDep, who: Analyst, rule_id: str, body: RuleBody) -> dict[str, Any]:
    """The id stays; a saved search goes on from its last pass. 409 for YAML rules, 404 if unknown."""
    return rules.update_rule(app, rule_id, body, by=who.name).as_dict()


@router.delete("/rules/{rule_id}", summary="Delete a stored rule (analyst)")
def delete_rule(app: AppDep, who: Analyst, rule_id: str) -> dict[str, Any]:
    """409 for YAML rules, 404 if unknown."""
    rules.delete_rule(app, rule_id, by=who.name)
    return {"id": rule_id, "deleted": True}


@router.post("/rules/{rule_id}/test", summary="Dry-run a rule over stored data (raises nothing)")
async def test_rule(app: AppDep, who: Reader, rule_id: str, p: Annotated[DryRunParams, Query()]) -> dict[str, Any]:
    """What the rule would have raised since ``since``: events with their evidence, alerts."""
    return await run_in_threadpool(_dry, app, rule_id, p)


@router.post("/rules-test", summary="Dry-run an unsaved rule over stored data (raises nothing)")
async def test_unsaved(app: AppDep, who: Reader, body: RuleBody, p: Annotated[DryRunParams, Query()]) -> dict[str, Any]:
    """The body is validated as a new rule would be, then run as :func:`test_rule` runs a saved one."""
    from narrawatch.rules_store import validate_rule

    rule = validate_rule({"id": "unsaved", **body}, app.alerts_config)
    return await run_in_threadpool(_dry, app, rule, p)
