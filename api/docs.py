"""Interactive API docs (/docs, /redoc) that load nothing from the internet.

FastAPI's own pages fetch Swagger UI and ReDoc from a CDN, so they stay blank on a city
intranet. The `fastapi-offline` package ships those files (swagger-ui-dist 5, which renders
FastAPI's OpenAPI 3.1, and ReDoc 2); the app serves them itself under ASSETS_URL.

Every URL in the pages starts with the request's `root_path`, as FastAPI's own pages do, so
they keep working when a reverse proxy publishes the API under a prefix and uvicorn is told
so (`--root-path /prefix`).
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

# The package's data folder: swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js,
# favicon.png (tests/test_api_docs.py fails if an upgrade moves them).
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
ASSETS_URL = "/docs-assets"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def add_docs(app: FastAPI) -> None:
    """Serve the docs pages and their files. Create `app` with docs_url=None, redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    app.add_api_route(DOCS_URL, swagger_ui_page, include_in_schema=False)
    app.add_api_route(OAUTH2_REDIRECT_URL, oauth2_redirect_page, include_in_schema=False)
    app.add_api_route(REDOC_URL, redoc_page, include_in_schema=False)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _openapi_url(request: Request) -> str:
    return _root(request) + (request.app.openapi_url or "/openapi.json")


def swagger_ui_page(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
    )


def oauth2_redirect_page() -> HTMLResponse:
    """Where Swagger UI's "Authorize" returns to (used once the API has accounts)."""
    return get_swagger_ui_oauth2_redirect_html()


def redoc_page(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} API reference",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,  # fonts.googleapis.com is unreachable from an intranet
    )
