"""The docs pages load every file from the app itself, also under a proxy prefix (issue #8 A13).

A city intranet has no route to a CDN: a page that names any outside host stays blank there.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import wait_for
from tests.identity_support import SECRET, api_settings

# src/href of <script>, <link> (stylesheet and favicon) and ReDoc's spec-url.
ASSET_RE = re.compile(r'<(script|link)\b[^>]*?\b(?:src|href)="([^"]*)"')
SPEC_RE = re.compile(r"""(?:url: '|spec-url=")([^'"]+)""")
# What a file must be served as, and a size no error page or stub reaches.
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
MIN_BYTES = {".js": 100_000, ".css": 50_000, ".png": 500}


@pytest.fixture
def app(database_url: str):
    return create_app(api_settings(database_url))


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def page_urls(html: str) -> tuple[list[str], str]:
    """The files a docs page loads, and the OpenAPI URL it points at."""
    assets = [url for _, url in ASSET_RE.findall(html)]
    (spec,) = SPEC_RE.findall(html)
    return assets, spec


def check_page(client: TestClient, page: str, prefix: str) -> list[str]:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "http://" not in html and "https://" not in html
    assets, spec = page_urls(html)
    assert assets, f"{page} loads no script or stylesheet"
    for url in [*assets, spec]:
        assert url.startswith(f"{prefix}/"), f"{url} is not under {prefix or '/'}"
        assert not url.startswith("//"), f"{url} names a host"
    for url in assets:
        got = client.get(url)
        suffix = url[url.rindex(".") :]
        assert got.status_code == 200, url
        assert got.headers["content-type"].startswith(CONTENT_TYPES[suffix]), url
        assert len(got.content) >= MIN_BYTES[suffix], url
    openapi = client.get(spec)
    assert openapi.status_code == 200
    assert openapi.json()["info"]["title"] == "urbanwatch"
    assert "/devices" in openapi.json()["paths"]
    return assets


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_loads_only_local_files(client, page):
    assets = check_page(client, page, prefix="")
    kinds = sorted(url[url.rindex(".") :] for url in assets)
    assert kinds == ([".css", ".js", ".png"] if page == "/docs" else [".js", ".png"])


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_under_a_proxy_prefix(app, page):
    # What uvicorn --root-path /city passes on for a proxy that publishes the API at /city.
    with TestClient(app, root_path="/city") as client:
        check_page(client, page, prefix="/city")


@pytest.mark.parametrize("prefix", ["", "/city"])
def test_oauth2_redirect_page(app, prefix):
    with TestClient(app, root_path=prefix) as client:
        html = client.get("/docs").text
        assert (
            f"oauth2RedirectUrl: window.location.origin + '{prefix}/docs/oauth2-redirect'" in html
        )
        response = client.get(f"{prefix}/docs/oauth2-redirect")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "swaggerUIRedirectOauth2" in response.text


def test_docs_pages_are_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/docs", "/redoc", "/docs/oauth2-redirect"} & set(paths)


def _get(url: str, timeout: float = 2) -> tuple[int, bytes] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except OSError:
        return None


def test_api_command_behind_a_prefix_stripping_proxy(database_url, tmp_path):
    """`urbanwatch api --root-path /city` in a real uvicorn; the test plays the proxy that
    publishes the API at /city and strips the prefix before forwarding."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "urbanwatch.cli",
            "api",
            "--port",
            str(port),
            "--root-path",
            "/city",
        ],
        env={**os.environ, "DATABASE_URL": database_url, "API_SECRET_KEY": SECRET},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        origin = f"http://127.0.0.1:{port}"
        # Importing every route takes ~5 s on a loaded 2-core machine, more under a test run.
        status, body = wait_for(
            lambda: _get(f"{origin}/docs"), timeout=60, what="the API to serve /docs"
        )
        assert status == 200
        assets, spec = page_urls(body.decode())
        assert sorted(assets) == [
            "/city/docs-assets/favicon.png",
            "/city/docs-assets/swagger-ui-bundle.js",
            "/city/docs-assets/swagger-ui.css",
        ]
        assert spec == "/city/openapi.json"
        for url in [*assets, spec]:
            # The first /openapi.json builds the schema of every route: seconds on a loaded
            # machine, so no 2-s poll timeout here.
            forwarded = _get(origin + url.removeprefix("/city"), timeout=60)
            assert forwarded is not None and forwarded[0] == 200, url
            assert len(forwarded[1]) >= 500, url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
