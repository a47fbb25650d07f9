"""The live stream of alert events (GET /alerts/stream, api/sse.py) through a real uvicorn
on loopback: events arrive as they are written, a reconnect with Last-Event-ID resumes with
every event after it and none twice; the stream's role is checked like every route's."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from psycopg_pool import ConnectionPool

from api import sse
from api.app import create_app
from tests.alerts_api_support import add_devices, load_default_routes, open_alert
from tests.conftest import wait_for
from tests.identity_support import api_settings, make_key
from urbanwatch.identity.roles import Role
from urbanwatch.queries import alert_work as q


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(database_url: str) -> Iterator[tuple[int, str]]:
    load_default_routes(database_url)
    add_devices(database_url)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(api_settings(database_url)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, name="alerts-api-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn to start")
    try:
        yield port, database_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class Stream:
    """One SSE connection read line by line."""

    def __init__(self, port: int, key: str | None, last_id: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        headers = {"Accept": "text/event-stream"}
        if key:
            headers["X-API-Key"] = key
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        self.conn.request("GET", "/alerts/stream", headers=headers)
        self.response = self.conn.getresponse()
        self.comments: list[str] = []

    def events(self, count: int) -> list[dict[str, str]]:
        """The next `count` events (comments and the retry line skipped)."""
        out: list[dict[str, str]] = []
        current: dict[str, str] = {}
        while len(out) < count:
            raw = self.response.fp.readline()
            if not raw:
                raise AssertionError(f"the stream ended after {len(out)} of {count} events")
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments.append(line)
            if line == "":
                if "id" in current:
                    out.append(current)
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                current[field] = value
        return out

    def close(self) -> None:
        self.conn.close()


def test_stream_resumes_after_a_reconnect(served):
    port, url = served
    key = make_key(url, Role.viewer)
    first = Stream(port, key)
    assert first.response.status == 200
    assert first.response.getheader("Content-Type").startswith("text/event-stream")
    a = open_alert(url)  # 'opened'
    b = open_alert(url, "MH_FLIP", "MH-2", district="linzhou", severity="critical")
    got = first.events(2)
    assert [e["event"] for e in got] == ["opened", "opened"]
    assert [int(json.loads(e["data"])["alert_id"]) for e in got] == [a, b]
    last = got[-1]["id"]
    first.close()

    # written while no one listens
    c = open_alert(url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan")
    d = open_alert(url, "SL_LAMP_OUT", "SL-1", "streetlight")
    again = Stream(port, key, last_id=last)
    resumed = again.events(2)
    assert [json.loads(e["data"])["alert_id"] for e in resumed] == [c, d]
    assert [int(e["id"]) for e in resumed] == sorted(int(e["id"]) for e in resumed)
    assert int(resumed[0]["id"]) > int(last)
    e = open_alert(url, "SL_LAMP_OUT", "SL-2", "streetlight")
    live = again.events(1)
    assert json.loads(live[0]["data"])["alert_id"] == e
    again.close()


def terminate_api_backends(url: str) -> int:
    """pg_terminate_backend on every connection of the API's pool (the stream's among them)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'urbanwatch-api'"
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def test_stream_survives_its_database_connection_being_terminated(served):
    """The stream's backend is terminated mid-stream: it says so in a comment, reconnects and
    sends the events written meanwhile, each once and in order, then the live ones."""
    port, url = served
    stream = Stream(port, make_key(url, Role.viewer))
    first = open_alert(url)
    (before,) = stream.events(1)
    assert json.loads(before["data"])["alert_id"] == first
    assert terminate_api_backends(url) >= 1
    during = [
        open_alert(url, "MH_FLIP", "MH-2", district="linzhou", severity="critical"),
        open_alert(url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan"),
        open_alert(url, "SL_LAMP_OUT", "SL-1", "streetlight"),
    ]
    got = stream.events(3)
    assert [json.loads(e["data"])["alert_id"] for e in got] == during
    ids = [int(before["id"])] + [int(e["id"]) for e in got]
    assert ids == list(range(ids[0], ids[0] + 4))  # none lost, none twice, in order
    assert any(c.startswith(": error ") for c in stream.comments), stream.comments
    assert terminate_api_backends(url) >= 1  # and again, while nothing is being written
    last = open_alert(url, "SL_LAMP_OUT", "SL-2", "streetlight")
    (live,) = stream.events(1)
    assert json.loads(live["data"])["alert_id"] == last and int(live["id"]) == ids[-1] + 1
    stream.close()


def test_stream_keeps_talking_while_the_database_is_unreachable(monkeypatch):
    """Nothing listens at the pool's address: the stream sends keep-alives while a read waits
    and an error comment for each failed one, and never ends by itself."""
    monkeypatch.setattr(sse, "KEEPALIVE_S", 0.2)
    monkeypatch.setattr(sse, "CHECKOUT_S", 0.5)
    pool = ConnectionPool(f"postgresql://127.0.0.1:{_free_port()}/none", min_size=1, open=True)

    async def first(n: int) -> list[str]:
        async def connected() -> bool:
            return False

        out = []
        async for chunk in sse.alert_events(pool, 0, connected):
            out.append(chunk)
            if len(out) == n:
                break
        return out

    try:
        chunks = asyncio.run(first(8))
    finally:
        pool.close()
    assert chunks[0].startswith("retry: ")
    assert all(c.startswith(": ") and c.endswith("\n\n") and c.count("\n") == 2 for c in chunks[1:])
    assert {c.split()[1] for c in chunks[1:]} == {"keepalive", "error"}


def test_stream_refuses_anonymous_and_bad_ids(served):
    port, url = served
    anonymous = Stream(port, None)
    assert anonymous.response.status == 401
    assert anonymous.response.getheader("WWW-Authenticate")
    anonymous.close()
    bad = Stream(port, make_key(url, Role.viewer), last_id="abc")
    assert bad.response.status == 400
    assert b"Last-Event-ID" in bad.response.read()
    bad.close()


def row(i: int) -> q.EventRow:
    return q.EventRow(
        id=i, alert_id=1, at="2026-12-01T00:00:00Z", event="opened", actor="engine",
        severity="alarm", detail={},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("last", "ids", "now", "sent"),
    [
        (0, [1, 2, 3], 0.0, [1, 2, 3]),  # contiguous: all at once
        (0, [1, 3], 0.0, [1]),  # 2 may still commit: held back
        (0, [1, 3], sse.GAP_WAIT_S + 1, [1]),  # the gap is first seen now
        (5, [6, 8, 9], 0.0, [6]),
    ],
)
def test_cursor_holds_back_a_gap(last, ids, now, sent):
    cursor = sse.Cursor(last)
    assert [r.id for r in cursor.take([row(i) for i in ids], now)] == sent


def test_cursor_skips_a_gap_that_lasts():
    cursor = sse.Cursor(0)
    assert [r.id for r in cursor.take([row(2)], 10.0)] == []
    assert [r.id for r in cursor.take([row(2)], 10.0 + sse.GAP_WAIT_S)] == [2]
    assert cursor.last_id == 2 and cursor.gap_since is None
