"""The reference receiver as an input path: any request gets an answer that says what is
wrong (never a 5xx), and exactly the validly signed, fresh ones are logged, once per key."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.notify.messages import webhook_signature
from alerts.notify.receiver import ReceiverState, Server, check_signature

SECRET = "receiver-secret"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server("127.0.0.1", 0, ReceiverState(SECRET, tmp_path / "r.jsonl", echo=False)).start()
    yield s
    s.stop()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())["status"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["status"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3).map(
            lambda d: json.dumps(d).encode()
        ),
    ),
    key=st.text(alphabet="abcdef0123456789-", max_size=6),
    skew=st.sampled_from([0, 10, -10, 240, 360, -360, 10_000]),  # clear of the 300 s edge
    signing=st.sampled_from(["right", "wrong", "none", "garbled-ts"]),
)
def test_any_request_answered_and_only_valid_ones_logged_once(
    server, tmp_path, body, key, skew, signing
):
    ts = int(time.time()) - skew
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    if signing != "none":
        secret = SECRET if signing != "wrong" else "other"
        headers["X-Urbanwatch-Timestamp"] = str(ts) if signing != "garbled-ts" else f"x{ts}"
        headers["X-Urbanwatch-Signature"] = webhook_signature(secret, ts, body)
    before = set(server.state.seen)
    code, status = post(server.url, body, headers)
    assert code < 500
    valid_json = True
    try:
        json.loads(body)
    except ValueError:
        valid_json = False
    ok = bool(key) and signing == "right" and abs(skew) < 300 and valid_json
    if ok:
        assert code == 200 and status == ("duplicate" if key in before else "ok")
        assert key in server.state.seen
    else:
        assert code in (400, 401) and status
        assert server.state.seen == before
    lines = (
        (tmp_path / "r.jsonl").read_text().splitlines() if (tmp_path / "r.jsonl").exists() else []
    )
    logged = [json.loads(x)["idempotency_key"] for x in lines]
    assert len(logged) == len(set(logged)) == len(server.state.seen)


def test_receiver_remembers_keys_across_restart(tmp_path):
    log = tmp_path / "r.jsonl"
    body = b'{"alert": {}}'
    ts = int(time.time())
    headers = {
        "Idempotency-Key": "k-1",
        "X-Urbanwatch-Timestamp": str(ts),
        "X-Urbanwatch-Signature": webhook_signature(SECRET, ts, body),
    }
    first = Server("127.0.0.1", 0, ReceiverState(SECRET, log, echo=False)).start()
    assert post(first.url, body, headers) == (200, "ok")
    first.stop()
    second = Server("127.0.0.1", 0, ReceiverState(SECRET, log, echo=False)).start()
    try:
        assert post(second.url, body, headers) == (200, "duplicate")
    finally:
        second.stop()
    assert len(log.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("ts", "sig", "problem"),
    [
        ("", "x", "missing or not a number"),
        ("12a", "x", "missing or not a number"),
        ("1000", "sha256=00", "more than 300 s"),
        ("2000", "sha256=00", "bad X-Urbanwatch-Signature"),
    ],
)
def test_check_signature_reasons(ts, sig, problem):
    assert problem in (check_signature(SECRET, ts, sig, b"{}", now=2000.0) or "")


def test_check_signature_accepts_the_right_one():
    assert (
        check_signature(SECRET, "2000", webhook_signature(SECRET, 2000, b"{}"), b"{}", 2100.0)
        is None
    )
