"""Schemathesis against the running API (uvicorn on loopback, a real database), with a valid
key for each role: no 5xx for any generated request, and every 4xx body says what is wrong
(a 422 names the field)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings

from api.app import create_app
from tests.conftest import ADMIN_URL, _create_database, _drop_database, wait_for
from tests.identity_support import api_settings, make_key
from urbanwatch.identity.roles import ORDER

# The document only: building the app opens nothing until it is served.
SCHEMA = schemathesis.openapi.from_dict(create_app(api_settings("postgresql:///unused")).openapi())
EXAMPLES = 6  # per operation and role: 18 operations x 4 roles (a 2-core machine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(template_db: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The API in uvicorn on a free loopback port over a database of this module's own, and
    a key for each role."""
    name = f"uw_st_{uuid.uuid4().hex[:12]}"
    url = _create_database(ADMIN_URL, name, template=template_db)
    keys = {role.value: make_key(url, role) for role in ORDER}
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(api_settings(url)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="identity-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _drop_database(ADMIN_URL, name)


def says_what_is_wrong(response: requests.Response) -> bool:
    body = response.json()
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code != 422:
        return isinstance(detail, str | list) and bool(detail)
    if isinstance(detail, str):
        return ":" in detail  # `field: reason`
    return bool(detail) and all(
        len(e["loc"]) >= 2 or e["msg"].startswith("Value error, ") or e["loc"] == ["body"]
        for e in detail
    )


@pytest.mark.parametrize("role", [r.value for r in ORDER])
@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_4xx_says_why(served, role, case):
    base_url, keys = served
    response = case.call(base_url=base_url, headers={"X-API-Key": keys[role]}, timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if 400 <= response.status_code < 500 and response.status_code != 405:
        assert says_what_is_wrong(response), (case.method, case.formatted_path, response.text)
