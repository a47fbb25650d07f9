"""/rules: the alert rule set through the API (issue #10 "Rules as data",
docs/api-alerts.md). Viewers read the set and a device's effective rules; operators replace
the set or its overrides. A change is validated as a whole rule set and refused as a whole
with the field that is wrong (422); the running engine keeps its last good set and picks up
a stored one by its version (alerts/service.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import Principal, require
from api.deps import Conn
from api.routes.alerts_body import refuse_unstorable
from urbanwatch.alerting import Override, Rule, RuleSet, default_rules, effective_rule
from urbanwatch.identity.roles import Role
from urbanwatch.queries import rules as q
from urbanwatch.queries.devices import get_device
from urbanwatch.storable import NO_NUL_NONEMPTY

router = APIRouter(prefix="/rules", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
DeviceId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL_NONEMPTY)]


class RuleSetPublic(BaseModel):
    version: int | None  # None: the shipped defaults, never loaded
    rules: RuleSet


class EffectiveRules(BaseModel):
    device_id: str
    kind: str
    district: str | None
    version: int | None
    rules: list[Rule]


class RuleSetBody(RuleSet):
    """PUT /rules: the whole set, as the rule file gives it, and why it changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    note: str | None = Field(None, max_length=500)


class OverridesBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overrides: list[Override]
    note: str | None = Field(None, max_length=500)


def current(conn: Conn) -> tuple[int | None, RuleSet]:
    data = q.load_rule_set_data(conn)
    if data is None:
        return None, default_rules()
    return q.current_version(conn), RuleSet.model_validate(data)


@router.get("", response_model=RuleSetPublic)
def get_rules(conn: Conn, _: Viewer) -> RuleSetPublic:
    version, rules = current(conn)
    return RuleSetPublic(version=version, rules=rules)


@router.get("/effective/{device_id}", response_model=EffectiveRules)
def get_effective(conn: Conn, _: Viewer, device_id: DeviceId) -> EffectiveRules:
    """The rules of the device's kind as they apply to it (overrides by kind, district and
    device: the most specific wins)."""
    device = get_device(conn, device_id)
    if device is None:
        raise HTTPException(404, detail=f"device_id: no device {device_id!r}")
    version, rules = current(conn)
    mine = [
        effective_rule(r, rules.overrides, device.kind, device.district, device.device_id)
        for r in rules.by_kind(device.kind)
    ]
    return EffectiveRules(
        device_id=device.device_id,
        kind=device.kind,
        district=device.district,
        version=version,
        rules=mine,
    )


@router.put("", response_model=RuleSetPublic)
def put_rules(conn: Conn, principal: Operator, body: RuleSetBody) -> RuleSetPublic:
    """Replace the whole rule set (rules, overrides, reopen window); audited."""
    refuse_unstorable(body.model_dump())
    rules = RuleSet.model_validate(body.model_dump(exclude={"note"}))
    version = q.store_rule_set(conn, rules, principal.audit_actor(), body.note)
    return RuleSetPublic(version=version, rules=rules)


@router.get("/overrides", response_model=list[Override])
def get_overrides(conn: Conn, _: Viewer) -> list[Override]:
    return current(conn)[1].overrides


@router.put("/overrides", response_model=RuleSetPublic)
def put_overrides(conn: Conn, principal: Operator, body: OverridesBody) -> RuleSetPublic:
    """Replace the overrides (by kind, district or device), checked against the rules."""
    refuse_unstorable(body.model_dump())
    _, rules = current(conn)
    data = rules.model_dump(mode="json")
    data["overrides"] = [o.model_dump(mode="json") for o in body.overrides]
    try:
        changed = RuleSet.model_validate(data)
    except ValidationError as exc:
        raise HTTPException(422, detail=_errors(exc)) from None
    version = q.store_rule_set(conn, changed, principal.audit_actor(), body.note)
    return RuleSetPublic(version=version, rules=changed)


def _errors(exc: ValidationError) -> list[dict[str, object]]:
    """The set's errors located in the body (`overrides[2]...`)."""
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
