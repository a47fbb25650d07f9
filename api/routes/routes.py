"""/routes: the notification routing (notify's tables, migration 012) through the API:
viewers read it, operators replace it as a whole. A body is checked exactly as a route file
(urbanwatch/routing/load.py) and refused as a whole with the field that is wrong (422)."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body, HTTPException

from api.auth import Principal, require
from api.deps import Conn, field_error
from api.routes.alerts_body import refuse_unstorable
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.queries import notify as q
from urbanwatch.routing.load import RouteFileError, parse_route_file

router = APIRouter(prefix="/routes", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]
SOURCE = "api"
MAX_ACK_S = 2**31 - 1  # notify_sla.ack_s is an integer column


def public(conn: Conn) -> dict[str, Any]:
    f = q.read_routes(conn)
    if f is None:
        raise HTTPException(404, detail="routes: none loaded yet (PUT /routes, or the CLI)")
    data = f.model_dump(mode="json")
    for route in data["routes"]:
        route.pop("line", None)
    return data


@router.get("")
def get_routes(conn: Conn, _: Viewer) -> dict[str, Any]:
    """The routing in force, in the route file's shape (version, sla, units, channels,
    crews, routes); SLA durations in seconds."""
    return public(conn)


@router.put("")
def put_routes(
    conn: Conn,
    principal: Operator,
    body: Annotated[dict[str, Any], Body(description="a route file's content as JSON")],
) -> dict[str, Any]:
    """Replace the whole routing; audited. The body is a route file as JSON."""
    refuse_unstorable(body)
    try:
        text = json.dumps(body, ensure_ascii=False, allow_nan=False)
        f = parse_route_file(yaml.safe_dump(json.loads(text), allow_unicode=True))
    except (ValueError, yaml.YAMLError) as exc:
        field = exc.field if isinstance(exc, RouteFileError) else ""
        problem = exc.problem if isinstance(exc, RouteFileError) else str(exc)
        raise field_error(422, ["body", *_path(field)], problem) from None
    for severity, sla in f.sla.items():
        if sla.ack is not None and sla.ack > MAX_ACK_S:
            raise field_error(422, ["body", "sla", severity, "ack"], "longer than 68 years")
    sha = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    before = q.read_routes(conn)
    q.replace_routes(conn, f, SOURCE, sha)
    audit.record(
        conn,
        principal.audit_actor(),
        "load",
        "alert_routes",
        sha[:12],
        before={"routes": len(before.routes)} if before else None,
        after={"source": SOURCE, "sha256": sha, "routes": len(f.routes), "crews": sorted(f.crews)},
    )
    return public(conn)


def _path(field: str) -> list[str]:
    """`routes[2].unit` -> ["routes", "2", "unit"]; empty for the file as a whole."""
    parts = field.replace("[", ".").replace("]", "").split(".")
    return [p for p in parts if p] or ["(file)"]
