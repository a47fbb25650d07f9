"""Per-minute ingest counts (migration 029, ingest/minutes.py, ingest/store.py): what the
worker stores in ingest_minutes equals what was published through the broker, adds up
across workers and restarts, and the live board's ingest panels read it as Grafana runs
them."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.build import load_json
from dashboards.live import LAG_BUCKETS
from dashboards.macros import QueryContext, expand
from ingest.minutes import (
    BUCKETS,
    DEAD_LETTERS,
    LAG_BOUNDS_S,
    LATE_S,
    Minute,
    Minutes,
    add_dead_letters,
    add_readings,
    merged,
)
from ingest.parse import Parsed, Row
from ingest.store import Store
from tests.conftest import wait_for
from tests.mqtt_helpers import (
    Publisher,
    WorkerProcess,
    count,
    iso,
    make_settings,
    register,
    running_worker,
)
from urbanwatch.kinds import KINDS, SPECS
from urbanwatch.queries import ingest_minutes
from urbanwatch.queries.readings import columns

NAME = "ingeststats"


@pytest.fixture
def topic_prefix() -> str:
    return f"uwtest-{NAME}-{uuid.uuid4().hex[:8]}"


def stored(conn: psycopg.Connection) -> dict[str, tuple[int, int, int, list[int]]]:
    """Per kind, summed over minutes and workers: readings, late, dead letters, histogram."""
    rows = conn.execute(
        "SELECT kind, sum(readings)::int, sum(late)::int, sum(dead_letters)::int, "
        "array_agg(lag_hist) FROM ingest_minutes GROUP BY kind"
    ).fetchall()
    out = {}
    for kind, readings, late, dead, hists in rows:
        out[kind] = (readings, late, dead, [sum(h[i] for h in hists) for i in range(BUCKETS)])
    return out


def reference(kind: str, rows: list[tuple[Any, ...]]) -> Minutes:
    """The per-minute counts computed the slow, obvious way."""
    out: Minutes = {}
    for ts, _device, received in (r[:3] for r in rows):
        key = (received.replace(second=0, microsecond=0), kind)
        m = out.setdefault(key, Minute())
        lag = (received - ts).total_seconds()
        i = next((i for i, b in enumerate(LAG_BOUNDS_S) if lag <= b), len(LAG_BOUNDS_S))
        m.hist[i] += 1
        m.readings += 1
        m.lag_max = lag if m.lag_max is None else max(m.lag_max, lag)
    return out


def as_plain(minutes: Minutes) -> dict[Any, tuple[Any, ...]]:
    return {k: m.as_tuple() for k, m in minutes.items()}


# --- the accumulation ------------------------------------------------------------------

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
received_times = st.integers(0, 3 * 60_000).map(lambda ms: T0 + timedelta(milliseconds=ms))
lags_ms = st.one_of(
    st.integers(-300_000, 7_200_000),
    st.sampled_from([int(b * 1000) for b in LAG_BOUNDS_S]),  # exactly on a bound
)
reading_rows = st.lists(
    st.tuples(received_times, lags_ms).map(
        lambda t: (t[0] - timedelta(milliseconds=t[1]), "wm-1", t[0])
    ),
    max_size=60,
)


@given(rows=reading_rows, cuts=st.lists(st.integers(0, 60), max_size=5))
def test_accumulating_in_any_batches_is_accumulating_at_once(rows, cuts):
    """Split into batches anywhere (as the writer's flushes fall), summed per minute: the
    same counts as all at once, and as the obvious per-reading computation."""
    whole: Minutes = {}
    add_readings(whole, "watermeter", rows)
    bounds = sorted({0, len(rows), *(c for c in cuts if c <= len(rows))})
    parts = []
    for lo, hi in pairwise(bounds):
        part: Minutes = {}
        add_readings(part, "watermeter", rows[lo:hi])
        parts.append(part)
    assert as_plain(merged(*parts)) == as_plain(whole) == as_plain(reference("watermeter", rows))
    assert sum(m.readings for m in whole.values()) == len(rows)
    assert sum(m.late for m in whole.values()) == sum(
        1 for ts, _, r in rows if (r - ts).total_seconds() > LATE_S
    )


def test_the_database_lag_bounds_are_the_code_s(conn):
    bounds = conn.execute("SELECT ingest_lag_bounds()").fetchone()[0]
    assert bounds[:-1] == list(LAG_BOUNDS_S)
    assert bounds[-1] == float("inf")
    assert len(bounds) == BUCKETS == LAG_BUCKETS  # the lag panel's CASE has one per bucket


def _rows(kind: str, rows: list[tuple[datetime, str, datetime]]) -> list[Row]:
    """Reading rows in table column order with one measurement (the first) set."""
    width = len(columns(kind)) - 3
    return [Row(kind, (ts, dev, rec, 1.0, *([None] * (width - 1)))) for ts, dev, rec in rows]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 4), received_times, lags_ms), max_size=20),
        min_size=1,
        max_size=4,
    )
)
def test_store_batches_land_as_their_counts(conn, database_url, batches):
    """Batches written by the Store (repeats included, as redeliveries are): the table holds
    the counts of the readings stored, not of those offered; one upsert per batch adds."""
    conn.execute("DELETE FROM watermeter_readings")
    conn.execute("DELETE FROM ingest_minutes")
    conn.execute("DELETE FROM devices WHERE device_id LIKE 'wm-prop-%'")
    register(conn, [(f"wm-prop-{i}", "watermeter") for i in range(5)], gateway=None)
    store = Store(database_url, f"{NAME}-prop")
    try:
        seen: set[tuple[str, datetime]] = set()
        new: list[tuple[datetime, str, datetime]] = []
        for batch in batches:
            rows, keys = [], set()
            for device, received, lag in batch:
                ts = received - timedelta(milliseconds=lag)
                if (f"wm-prop-{device}", ts) in keys:
                    continue  # one batch never holds the same key twice after parse
                keys.add((f"wm-prop-{device}", ts))
                rows.append((ts, f"wm-prop-{device}", received))
                if (f"wm-prop-{device}", ts) not in seen:
                    new.append((ts, f"wm-prop-{device}", received))
            seen |= keys
            store.write(Parsed(rows=_rows("watermeter", rows)))
    finally:
        store.close()
    want = as_plain(reference("watermeter", new))
    got = {
        (minute, kind): (readings, late, dead, hist, lag_max)
        for minute, kind, readings, late, dead, hist, lag_max in conn.execute(
            "SELECT minute, kind, readings, late, dead_letters, lag_hist, lag_max "
            "FROM ingest_minutes WHERE worker = %s",
            (f"{NAME}-prop",),
        )
    }
    assert got == want
    assert sum(v[0] for v in got.values()) == count(conn, "watermeter_readings") == len(new)


def test_workers_upserting_the_same_minute_at_once_add_up(conn, database_url):
    """Several connections adding to the same (minute, kind, worker) row concurrently (the
    row lock serialises them): nothing is lost."""
    devices = [(f"wm-c{i}", "watermeter") for i in range(4)]
    register(conn, devices, gateway=None)
    received = datetime.now(UTC).replace(second=30, microsecond=0)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        store = Store(database_url, f"{NAME}-shared")
        try:
            for n in range(25):
                ts = received - timedelta(seconds=1 + n * 4 + i)
                store.write(Parsed(rows=_rows("watermeter", [(ts, devices[i][0], received)])))
                minutes: Minutes = {}
                add_dead_letters(minutes, [received])
                with store.connection().transaction(), store.connection().cursor() as cur:
                    ingest_minutes.add(
                        cur, f"{NAME}-shared", [(*k, *m.as_tuple()) for k, m in minutes.items()]
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stored(conn)["watermeter"][0] == 100 == count(conn, "watermeter_readings")
    assert stored(conn)[DEAD_LETTERS][2] == 100
    assert conn.execute("SELECT count(*) FROM ingest_minutes").fetchone()[0] == 2


def test_old_rows_are_pruned(conn, database_url):
    now = datetime.now(UTC)
    with conn.cursor() as cur:
        for age in (ingest_minutes.KEEP + timedelta(minutes=1), timedelta(days=1)):
            minute = (now - age).replace(second=0, microsecond=0)
            ingest_minutes.add(cur, NAME, [(minute, "watermeter", 1, 0, 0, [1] + [0] * 14, 0.1)])
    store = Store(database_url, NAME)
    try:
        assert store.prune_minutes(now) == 1
    finally:
        store.close()
    assert conn.execute("SELECT count(*) FROM ingest_minutes").fetchone()[0] == 1


# --- through the broker -----------------------------------------------------------------

DEVICES = [
    ("mh-1", "manhole"),
    ("wl-1", "waterlog"),
    ("wm-1", "watermeter"),
    ("wm-2", "watermeter"),
]


def _publish_known(pub: Publisher, prefix: str, now: datetime) -> dict[str, int]:
    """Readings of three kinds, some late (measured 10 min ago), one repeated, two bad
    messages. Returns how many readings of each kind should be stored."""
    sent = {"manhole": 0, "waterlog": 0, "watermeter": 0}
    for n in range(30):
        ts = now - timedelta(seconds=20 + n)
        pub.publish(f"{prefix}/manhole/mh-1/telemetry", {"ts": iso(ts), "tilt_deg": 1.0 + n})
        sent["manhole"] += 1
    for n in range(12):  # late: a device's backlog
        ts = now - timedelta(minutes=10, seconds=n)
        pub.publish(f"{prefix}/waterlog/wl-1/telemetry", {"ts": iso(ts), "depth_cm": 3.0})
        sent["waterlog"] += 1
    for n in range(40):
        ts = now - timedelta(seconds=5 + n)
        device = ("wm-1", "wm-2")[n % 2]
        pub.publish(f"{prefix}/watermeter/{device}/telemetry", {"ts": iso(ts), "flow_m3_h": 1.0})
        sent["watermeter"] += 1
    # the same reading again (a repeat the (device_id, ts) key drops): not counted
    pub.publish(
        f"{prefix}/watermeter/wm-1/telemetry",
        {"ts": iso(now - timedelta(seconds=5)), "flow_m3_h": 1.0},
    )
    pub.publish(f"{prefix}/manhole/mh-1/telemetry", b"{oops")
    pub.publish(f"{prefix}/manhole/ghost/telemetry", b'{"ts": 1, "tilt_deg": 1}')
    return sent


def test_counts_equal_what_was_published(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        sent = _publish_known(pub, topic_prefix, now)
        wait_for(lambda: count(conn, "dead_letters") == 2, what="2 dead letters")
        wait_for(
            lambda: sum(count(conn, f"{k}_readings") for k in sent) == sum(sent.values()),
            what="the readings",
        )
    counts = stored(conn)
    for kind, n in sent.items():
        readings, late, dead, hist = counts[kind]
        assert readings == n == count(conn, f"{kind}_readings") == sum(hist)
        assert dead == 0
        assert late == (n if kind == "waterlog" else 0)
    assert counts[DEAD_LETTERS][:3] == (0, 0, 2)
    # lags: manhole 20–49 s (the 30 s and 60 s buckets), waterlog ~600 s
    assert sum(counts["manhole"][3][LAG_BOUNDS_S.index(30) : LAG_BOUNDS_S.index(60) + 1]) == 30
    assert counts["waterlog"][3][LAG_BOUNDS_S.index(600) + 1] == 12
    workers = {w for (w,) in conn.execute("SELECT DISTINCT worker FROM ingest_minutes")}
    assert workers == {f"{topic_prefix}-worker"}


def test_two_workers_add_up(conn, database_url, mqtt_url, topic_prefix):
    """Two workers on one shared subscription: each counts what it stored, in its own rows,
    and the rows add up to what was published."""
    register(conn, DEVICES)
    base = make_settings(database_url, mqtt_url, topic_prefix, ingest_share_group=NAME)
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        running_worker(base, client_id=f"{topic_prefix}-w1"),
        running_worker(base, client_id=f"{topic_prefix}-w2"),
        Publisher(mqtt_url) as pub,
    ):
        sent = _publish_known(pub, topic_prefix, now)
        wait_for(
            lambda: (
                sum(count(conn, f"{k}_readings") for k in sent) == sum(sent.values())
                and count(conn, "dead_letters") == 2
            ),
            what="everything stored",
        )
    per_worker = dict(
        conn.execute(
            "SELECT worker, sum(readings)::int FROM ingest_minutes GROUP BY worker"
        ).fetchall()
    )
    assert set(per_worker) == {f"{topic_prefix}-w1", f"{topic_prefix}-w2"}
    assert all(n > 0 for n in per_worker.values())
    assert sum(per_worker.values()) == sum(sent.values())
    counts = stored(conn)
    assert {k: counts[k][0] for k in sent} == sent


def test_a_killed_worker_counts_exactly_once_after_restart(
    conn, database_url, mqtt_url, topic_prefix
):
    """SIGKILL mid-stream: what was committed was counted with it, what was not is
    redelivered to the restarted worker and counted then; repeats are not counted."""
    devices = [(f"wm-{i:02d}", "watermeter") for i in range(50)]
    register(conn, devices)
    start = datetime.now(UTC) - timedelta(minutes=3)

    def publish_range(pub: Publisher, lo: int, hi: int) -> None:
        for n in range(lo, hi):
            ts = start + timedelta(seconds=n // 50)
            pub.publish(
                f"{topic_prefix}/watermeter/{devices[n % 50][0]}/telemetry",
                {"ts": iso(ts), "flow_m3_h": float(n % 97)},
            )

    worker = WorkerProcess(database_url, mqtt_url, topic_prefix)
    try:
        worker.wait_ready()
        with Publisher(mqtt_url) as pub:
            publish_range(pub, 0, 1500)
            wait_for(lambda: count(conn, "watermeter_readings") > 0, what="some rows committed")
            worker.kill()
            at_kill = count(conn, "watermeter_readings")
            assert stored(conn)["watermeter"][0] == at_kill
            publish_range(pub, 1500, 3000)
        worker.start()
        wait_for(lambda: count(conn, "watermeter_readings") == 3000, timeout=30, what="3000 rows")
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
    readings, _late, _dead, hist = stored(conn)["watermeter"]
    assert readings == sum(hist) == 3000


# --- the live board's panels on what a worker stored ------------------------------------


def _live_target(panel_id: int) -> str:
    board = next(b for _f, b in load_json() if b["uid"] == "uw-live")
    panel = next(p for p in board["panels"] if p["id"] == panel_id)
    return panel["targets"][0]["rawSql"]


def _as_grafana(conn: psycopg.Connection, query: str) -> list[tuple[Any, ...]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL ROLE urbanwatch_grafana")
        return conn.execute(query.encode()).fetchall()


def test_the_live_panels_show_what_was_published(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    now = datetime.now(UTC).replace(microsecond=0)
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        sent = _publish_known(pub, topic_prefix, now)
        wait_for(
            lambda: sum(count(conn, f"{k}_readings") for k in sent) == sum(sent.values()),
            what="the readings",
        )
    end = datetime.now(UTC) + timedelta(minutes=1)
    ctx = QueryContext(
        end - timedelta(hours=6), end, timedelta(minutes=1), False, {"kind": list(KINDS)},
        frozenset({"kind", "district"}),
    )  # fmt: skip
    title = {SPECS[k].title: k for k in KINDS}
    rate = _as_grafana(conn, expand(_live_target(6), ctx))
    per_kind: dict[str, float] = {}
    for _time, metric, value in rate:
        per_kind[title[metric]] = per_kind.get(title[metric], 0) + float(value) * 60
    assert {k: round(v) for k, v in per_kind.items()} == sent
    lag = _as_grafana(conn, expand(_live_target(7), ctx))
    p95: dict[str, float] = {}
    for _time, metric, value in lag:
        p95[title[metric]] = max(p95.get(title[metric], 0), value)
    assert set(p95) == set(sent)
    assert 600 <= p95["waterlog"] < 700  # the minute's largest lag caps the 1800 s bound
    assert 30 < p95["manhole"] <= 60
    assert p95["watermeter"] <= 60
    # one kind chosen: only its series
    one = QueryContext(ctx.start, ctx.end, ctx.interval, False, {"kind": ["waterlog"]}, ctx.multi)
    assert {m for _t, m, _v in _as_grafana(conn, expand(_live_target(7), one))} == {
        SPECS["waterlog"].title
    }
