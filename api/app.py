"""The FastAPI application: one router per resource, a connection pool per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.docs import add_docs
from api.routes import devices, districts, health
from urbanwatch import __version__, db
from urbanwatch.settings import Settings


def create_app(settings: Settings) -> FastAPI:
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
    return app
