"""The FastAPI application: one router per resource, a connection pool per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.auth import declare_roles
from api.docs import add_docs
from api.routes import (
    alert_sla,
    alerts,
    alerts_onsite,
    alerts_stream,
    audit,
    auth,
    devices,
    districts,
    health,
    keys,
    kpis,
    ledgers,
    routes,
    rules,
    targets,
    users,
    windows,
)
from urbanwatch import __version__, db
from urbanwatch.errors import UsageError
from urbanwatch.identity import passwords
from urbanwatch.identity.tokens import MIN_SECRET_BYTES
from urbanwatch.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    secret = settings.api_secret_key
    if secret is None or len(secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
        raise UsageError(
            f"setting API_SECRET_KEY: {'too short' if secret else 'unset'}; the API "
            f"signs its access tokens with it: set it to ≥ {MIN_SECRET_BYTES} random bytes, e.g. "
            "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    passwords.apply_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.pool = db.create_pool(settings.database_url, name="urbanwatch-api")
        try:
            yield
        finally:
            app.state.pool.close()

    app = FastAPI(
        title="urbanwatch",
        version=__version__,
        description="Device registry and monitoring data for Anyang's street infrastructure "
        "(manhole covers, waterlogging points, street lighting, water DMAs).",
        lifespan=lifespan,
        docs_url=None,  # served by add_docs from local files, not a CDN
        redoc_url=None,
    )
    add_docs(app)
    app.include_router(health.router)
    app.include_router(districts.router)
    app.include_router(devices.router)
    for identity in (auth, users, keys, audit):
        app.include_router(identity.router)
    for plan in (targets, kpis, ledgers):  # issue #11: the plan, its KPIs and ledgers
        app.include_router(plan.router)
    # issue #10: alerts (the stream before /alerts/{id}), incidents, rules, routes, windows,
    # the per-severity SLA periods
    for alerting in (alerts_stream, alerts, alerts_onsite, rules, routes, windows, alert_sla):
        app.include_router(alerting.router)
    app.include_router(alerts.incidents)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(psycopg.DataError, _unstorable_value)
    declare_roles(app)
    return app


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    """A value PostgreSQL cannot hold (a NUL character, \\u0000 in JSON) that no model
    refused: a 422, not a 500 (found by tests/test_api_schemathesis.py)."""
    assert isinstance(exc, psycopg.DataError)
    reason = exc.diag.message_primary or "a value the database cannot store"
    if exc.diag.message_detail:
        reason += f" ({exc.diag.message_detail})"
    error = {"loc": ["body"], "msg": f"Value error, {reason}", "type": "value_error"}
    return JSONResponse(status_code=422, content={"detail": [error]})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body without the `input` of each error: the input may be a password."""
    assert isinstance(exc, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errors)})
