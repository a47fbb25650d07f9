"""The nightly DMA rules on the engine's timer (alerts/detectors/nightly.py): which nights are
due when, each evaluated once across engines and restarts, missed nights caught up, and
`urbanwatch alerts run` doing it by itself."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import daily as d
from alerts.detectors.nightly import NightlyTimer, run_due
from tests.alerts_helpers import EngineProcess
from tests.conftest import wait_for
from urbanwatch.queries import detectors as q

DELAY = 900.0


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=d.LOCAL)


@pytest.mark.parametrize(
    ("now", "done", "due"),
    [
        ("2026-12-01T12:00", None, ["2026-12-01"]),  # first start: the newest night only
        ("2026-12-01T05:10", None, ["2026-11-30"]),  # 05:00 + 15 min not reached yet
        ("2026-12-01T05:15", None, ["2026-12-01"]),
        ("2026-12-01T05:10", "2026-11-30", []),
        ("2026-12-01T12:00", "2026-12-01", []),  # done: a restart does nothing
        ("2026-12-01T12:00", "2026-11-28", ["2026-11-29", "2026-11-30", "2026-12-01"]),
        ("2026-12-01T12:00", "2027-01-01", []),  # the clock stepped back
    ],
)
def test_nights_due(now: str, done: str | None, due: list[str]) -> None:
    last = None if done is None else date.fromisoformat(done)
    assert d.nights_due(local(now), last, DELAY) == [date.fromisoformat(n) for n in due]


def test_catch_up_is_bounded_to_a_baseline_of_nights() -> None:
    due = d.nights_due(local("2026-12-01T12:00"), date(2026, 1, 1), DELAY)
    assert len(due) == d.CATCH_UP_NIGHTS and due[-1] == date(2026, 12, 1)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    st.one_of(st.none(), st.dates(date(2019, 12, 1), date(2030, 2, 1))),
    st.floats(0, 86400),
)
def test_due_nights_are_ended_new_and_in_order(now, done, delay) -> None:
    due = d.nights_due(now, done, delay)
    assert len(due) <= d.CATCH_UP_NIGHTS
    assert due == sorted(due) and len(set(due)) == len(due)
    for night in due:
        assert d.night_window(night)[1] + timedelta(seconds=delay) <= now
        assert done is None or night > done
    # the night that falls due next is due from next_due on, and only it
    upcoming = d.next_due(now, delay)
    assert upcoming > now
    latest = d.last_complete_night(now - timedelta(seconds=delay))
    assert d.nights_due(upcoming, latest, delay) == [latest + timedelta(days=1)]


# --- through the database ---------------------------------------------------------------------


def seed(conn: psycopg.Connection, nights: list[date], mnf: float = 30.0) -> None:
    """One inlet meter of DMA-T reporting every 15 min through `nights` (40 m³/h by day, `mnf`
    at night) and 7 earlier valid nights of 10 m³/h, so each night's MNF_STEP fires."""
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) VALUES ('WM-T', "
        '\'watermeter\', \'wenfeng\', 36.1, 114.3, \'{"dma_id": "DMA-T", "meter_role": "inlet"}\')'
    )
    rows = []
    for night in nights:
        start, end = d.night_window(night)
        t = start - timedelta(days=1)
        while t < end:
            rows.append(("WM-T", t, t, mnf if t >= start else 40.0))
            t += timedelta(minutes=15)
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO watermeter_readings (device_id, ts, received_at, flow_m3_h) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            rows,
        )
    for i in range(1, 8):
        past = nights[0] - timedelta(days=i)
        q.save_night(conn, {
            "dma_id": "DMA-T", "night": past, "method": d.METHOD, "mnf": 10.0, "mnf_at": None,
            "completeness": 1.0, "valid": True, "baseline": None, "baseline_nights": 0,
            "adf": 40.0, "properties": 0, "rules": {},
        })  # fmt: skip
    conn.commit()


def stored(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple], list[tuple]]:
    runs = conn.execute("SELECT night, dmas FROM dma_daily_runs ORDER BY night").fetchall()
    nights = conn.execute(
        "SELECT night, mnf_m3_h, baseline_m3_h, completeness, valid, computed_at "
        "FROM dma_night_flow WHERE night = ANY(%s) ORDER BY night",
        ([r[0] for r in runs],),
    ).fetchall()
    events = conn.execute(
        "SELECT a.rule_id, a.subject, e.event FROM alert_events e JOIN alerts a "
        "ON a.id = e.alert_id WHERE a.rule_id LIKE 'DMA%%' ORDER BY e.id"
    ).fetchall()  # (the engine also finds WM-T offline: no reading for hours)
    conn.commit()
    return runs, nights, events


def test_two_engines_at_once_evaluate_the_night_once_and_a_restart_not_again(
    conn, database_url
) -> None:
    now = local("2026-12-01T12:00")
    night = date(2026, 12, 1)
    seed(conn, [night])
    barrier, done, errors = threading.Barrier(2), [], []

    def engine(name: str) -> None:
        with psycopg.connect(database_url) as own:
            barrier.wait()
            try:
                done.extend(run_due(own, now, DELAY, name) or [])
            except psycopg.Error as exc:  # e.g. both writing the night's row
                errors.append(exc)

    threads = [threading.Thread(target=engine, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert (done, errors) == ([night], [])
    runs, nights, events = stored(conn)
    assert runs == [(night, 1)]
    assert [n[:5] for n in nights] == [(night, 30.0, 10.0, 1.0, True)]
    assert events == [("DMA_MNF_STEP", "DMA-T", "opened")]
    # a restarted engine, later the same day: nothing due, nothing rewritten
    assert run_due(conn, now + timedelta(hours=6), DELAY, "c") == []
    assert stored(conn) == (runs, nights, events)


def test_missed_nights_are_caught_up_in_order(conn, database_url) -> None:
    nights = [date(2026, 11, 28) + timedelta(days=i) for i in range(4)]
    seed(conn, nights)
    q.save_daily_run(conn, nights[0], 1, "before the outage")
    conn.commit()
    timer = NightlyTimer(database_url, DELAY, threading.Event(), lambda: local("2026-12-01T09:00"))
    assert timer.round() > 0
    runs, rows, _ = stored(conn)
    assert [r[0] for r in runs] == nights
    assert [(r[0], r[1]) for r in rows] == [(n, 30.0) for n in nights[1:]]


def test_a_round_against_a_dead_database_is_retried_not_fatal(database_url) -> None:
    timer = NightlyTimer("postgresql://127.0.0.1:1/none", DELAY, threading.Event())
    assert timer.round() == pytest.approx(30.0)
    assert timer.rounds == 0


def test_alerts_run_evaluates_the_last_night_by_itself_once(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    night = d.last_complete_night(datetime.now(UTC) - timedelta(seconds=DELAY))
    seed(conn, [night])
    env = {"ALERTS_PARTITIONS": "2"}
    one = EngineProcess(database_url, mqtt_url, topic_prefix, **env)
    two = EngineProcess(database_url, mqtt_url, topic_prefix, **env)
    try:
        for engine in (one, two):
            wait_for(
                lambda e=engine: any("daily MNF rules" in line for line in e.lines),
                timeout=30,
                what="the engine's first daily round",
            )
        first = stored(conn)
        assert first[0] == [(night, 1)]
        assert first[2] == [("DMA_MNF_STEP", "DMA-T", "opened")]
        one.kill()
        one.start()
        wait_for(
            lambda: any("daily MNF rules: nothing due" in line for line in one.lines),
            timeout=30,
            what="the restarted engine's daily round",
        )
        assert stored(conn) == first
    finally:
        one.stop()
        two.stop()


def test_an_engine_leaves_the_night_to_the_one_holding_the_lock(conn, database_url) -> None:
    night = date(2026, 12, 1)
    seed(conn, [night])
    with psycopg.connect(database_url) as other:
        assert q.try_daily_lock(other)  # another engine mid-round
        assert run_due(conn, local("2026-12-01T12:00"), DELAY, "b") is None
        other.rollback()
    assert run_due(conn, local("2026-12-01T12:00"), DELAY, "b") == [night]
