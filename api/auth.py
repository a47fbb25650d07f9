"""Who calls: `require(role)` is the dependency every route declares (issue #9).

A caller is an API key (`X-API-Key: uwk_…`, for integrators) or a person's access token
(`Authorization: Bearer …`, from POST /auth/token). No credential: 401 with
WWW-Authenticate; a valid one whose role is lower than the route's: 403. `public()` marks the
few routes anyone may call (health, sign-in). `declare_roles(app)` writes each route's role
into the OpenAPI document as `x-required-role` and refuses an app with a route that declares
none, so tests/test_api_roles.py can check every route against every role.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from api.deps import Conn
from urbanwatch import audit
from urbanwatch.identity import tokens
from urbanwatch.identity.roles import Role
from urbanwatch.queries import api_keys as key_queries
from urbanwatch.queries import users as user_queries

PUBLIC = "public"
ROLE_KEY = "x-required-role"

_bearer = OAuth2PasswordBearer(tokenUrl="auth/token", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: `actor` as in the audit log (`user:<name>`, `key:<id>`)."""

    actor: str
    role: Role
    unit: str | None
    client: str
    user_id: int | None = None  # a person's account; None for a key

    def audit_actor(self) -> audit.Actor:
        return audit.Actor(self.actor, self.role.value, self.client)

    def works_for(self, unit_aliases: Collection[str]) -> bool:
        """May work (acknowledge, resolve) an alert whose units go by `unit_aliases` (the
        ids and names of the units it is routed or assigned to: queries.alert_work
        .unit_aliases): an operator or admin anything, a crew only its own unit's (its
        `unit` one of the aliases), a viewer nothing."""
        if self.role.allows(Role.operator):
            return True
        return self.role is Role.crew and self.unit is not None and self.unit in unit_aliases

    @property
    def reads_own_unit_only(self) -> bool:
        """A crew reads only the alerts it works (docs/api-alerts.md); viewers, operators and
        admins read every alert."""
        return self.role is Role.crew


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(message: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" + (f' error="{error}"' if error else "")
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": challenge})


def _from_key(conn: Conn, key: str, client: str) -> Principal:
    key_id = tokens.split_api_key(key)
    stored = key_queries.get_key_hash(conn, key_id) if key_id else None
    if key_id is None or stored is None or not tokens.same_digest(stored, key):
        raise _unauthorized("X-API-Key: not a valid API key", "invalid_token")
    row = key_queries.get_key(conn, key_id)
    now = user_queries.now(conn)
    if row is None or row.revoked_at is not None or (row.expires_at and row.expires_at <= now):
        raise _unauthorized("X-API-Key: this API key is revoked or expired", "invalid_token")
    key_queries.touch_key(conn, key_id)
    return Principal(f"key:{key_id}", row.role, row.unit, client)


def _from_token(conn: Conn, request: Request, token: str, client: str) -> Principal:
    secret = request.app.state.settings.api_secret_key.get_secret_value()
    username = tokens.decode_access(token, datetime.now(UTC), secret)
    user = user_queries.get_user(conn, username) if username else None
    if user is None or user.disabled:
        raise _unauthorized("Authorization: invalid or expired access token", "invalid_token")
    return Principal(f"user:{user.username}", user.role, user.unit, client, user.id)


class RoleRequirement:
    """The dependency `require(role)` returns; `role` None means public."""

    def __init__(self, role: Role | None):
        self.role = role

    def __call__(
        self,
        request: Request,
        conn: Conn,
        bearer: Annotated[str | None, Security(_bearer)],
        api_key: Annotated[str | None, Security(_api_key)],
    ) -> Principal | None:
        if self.role is None:
            return None
        client = client_address(request)
        if api_key:
            principal = _from_key(conn, api_key, client)
        elif bearer:
            principal = _from_token(conn, request, bearer, client)
        else:
            raise _unauthorized("sign in (POST /auth/token) or send an X-API-Key header")
        if not principal.role.allows(self.role):
            raise HTTPException(
                403,
                detail=f"this needs the {self.role.value} role; you have {principal.role.value}",
            )
        return principal


def require(role: Role) -> Any:
    """`principal: Annotated[Principal, require(Role.operator)]` in a route's parameters."""
    return Depends(RoleRequirement(role))


class PublicAccess(RoleRequirement):
    """The dependency `public()` returns: reads no credential."""

    def __init__(self) -> None:
        super().__init__(None)

    def __call__(self) -> None:  # type: ignore[override]
        return None


def public() -> Any:
    """For `dependencies=[public()]`: anyone may call this route."""
    return Depends(PublicAccess())


def _declared(dependant: Dependant) -> RoleRequirement | None:
    for dep in dependant.dependencies:
        if isinstance(dep.call, RoleRequirement):
            return dep.call
        found = _declared(dep)
        if found is not None:
            return found
    return None


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """The app's API routes with their effective dependencies (FastAPI ≥ 0.16x keeps included
    routers as contexts rather than copies of their routes)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        yield from (r for r in app.routes if isinstance(r, APIRoute))
        return
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def route_roles(app: FastAPI) -> dict[tuple[str, str], str]:
    """(path, method) -> the role it needs ("public" for anyone); RuntimeError naming every
    route in the OpenAPI document that declares none."""
    roles, missing = {}, []
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        requirement = _declared(route.dependant)
        for method in sorted(route.methods or ()):
            if requirement is None:
                missing.append(f"{method} {route.path}")
            else:
                role = requirement.role.value if requirement.role else PUBLIC
                roles[(route.path, method.lower())] = role
    if missing:
        raise RuntimeError(f"routes without a declared role (api/auth.py): {', '.join(missing)}")
    return roles


def declare_roles(app: FastAPI) -> None:
    """Refuse an app with a route that declares no role; write each route's role into the
    OpenAPI document as `x-required-role`."""
    roles = route_roles(app)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for (path, method), role in roles.items():
                schema["paths"][path][method][ROLE_KEY] = role
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def as_actor(principal: Principal) -> audit.Actor:
    return principal.audit_actor()
