"""WS_FLOW_ANOMALY's expected flow as docs/domain.md §5.6 defines it (issue #10): the same
weekday and 15-min slot of local time (Asia/Shanghai), median of the last 4 weeks, σ from
their median absolute deviation; with fewer than 2 weeks of the slot, the same slot over the
last 7 days, then the hourly profile (urbanwatch/queries/profiles.py)."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.service import PROFILE_REFRESH_S
from tests.alerts_helpers import engine_settings, running_engine
from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher
from urbanwatch.alerting import Device, DeviceState, default_rules, evaluate_reading, make_plan
from urbanwatch.queries.alerts import hourly_profiles
from urbanwatch.queries.profiles import (
    HOUR_7D,
    SLOT_7D,
    WEEKDAY_SLOT,
    choose,
    load_profiles,
    utc_hour_of_slot,
    week_slot,
)
from urbanwatch.queries.rollups import REFRESH_PLAIN
from urbanwatch.topics import telemetry_topic

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Monday 30 November 2026, 10:10 local: the profiles' refresh time in the database tests.
NOW = datetime(2026, 11, 30, 10, 10, tzinfo=SHANGHAI).astimezone(UTC)


def local(*args: int) -> float:
    return datetime(*args, tzinfo=SHANGHAI).timestamp()  # type: ignore[misc]


# --- slot arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "slot"),
    [
        (local(2026, 11, 30, 0, 7), 0),  # Monday 00:07 local (Sunday 16:07 UTC): Monday slot 0
        (local(2026, 11, 30, 0, 0), 0),
        (local(2026, 11, 29, 23, 59, 59), 671),  # Sunday's last slot, one second before
        (local(2026, 11, 30, 0, 15), 1),
        (local(2026, 11, 30, 8, 0), 32),  # Monday-morning peak
        (local(2026, 12, 1, 0, 14, 59), 96),  # Tuesday 00:14:59 local
        (local(2026, 12, 1, 7, 59, 59), 96 + 31),  # 23:59:59 UTC Monday: local Tuesday
        (local(2026, 12, 6, 23, 45), 671),  # Sunday 23:45 local
        (local(2024, 2, 29, 12, 30), 3 * 96 + 50),  # a leap day, a Thursday
        (0.0, 3 * 96 + 32),  # the epoch: Thursday 08:00 local
    ],
)
def test_week_slot_is_the_local_weekday_and_quarter(ts: float, slot: int) -> None:
    assert week_slot(ts) == slot


@given(st.integers(946_684_800, 4_102_444_799))  # 2000..2099
def test_week_slot_agrees_with_zoneinfo(ts: int) -> None:
    at = datetime.fromtimestamp(ts, SHANGHAI)
    assert week_slot(ts) == at.weekday() * 96 + at.hour * 4 + at.minute // 15
    assert utc_hour_of_slot(week_slot(ts)) == datetime.fromtimestamp(ts, UTC).hour


# --- fallback order (pure) ------------------------------------------------------------------

WEEK = {"flow_m3_h": 100.0, "flow_m3_h_sd": 2.0, "n_flow_m3_h": 2, "n_pressure_mpa": 0}
DAY = {"flow_m3_h": 40.0, "flow_m3_h_sd": 5.0, "n_flow_m3_h": 7}
DAY["pressure_mpa"], DAY["pressure_mpa_sd"], DAY["n_pressure_mpa"] = 0.3, 0.01, 3
HOUR = {"flow_m3_h": 35.0, "pressure_mpa": 0.28}


@pytest.mark.parametrize(
    ("weekly", "daily", "hourly", "expected"),
    [
        # 2 weeks of flow: the weekday slot; no pressure in those weeks: the 7-day slot's
        (
            WEEK,
            DAY,
            HOUR,
            {
                "flow_m3_h": 100.0,
                "flow_m3_h_sd": 2.0,
                "flow_m3_h_basis": WEEKDAY_SLOT,
                "pressure_mpa": 0.3,
                "pressure_mpa_sd": 0.01,
                "pressure_mpa_basis": SLOT_7D,
            },
        ),
        # 1 week: the 7-day slot for both
        (
            {**WEEK, "n_flow_m3_h": 1},
            DAY,
            None,
            {
                "flow_m3_h": 40.0,
                "flow_m3_h_sd": 5.0,
                "flow_m3_h_basis": SLOT_7D,
                "pressure_mpa": 0.3,
                "pressure_mpa_sd": 0.01,
                "pressure_mpa_basis": SLOT_7D,
            },
        ),
        # 1 day of the slot either way: the hourly profile (no σ with fewer than 2 days)
        (
            {**WEEK, "n_flow_m3_h": 1},
            {**DAY, "n_flow_m3_h": 1, "n_pressure_mpa": 1},
            HOUR,
            {
                "flow_m3_h": 35.0,
                "flow_m3_h_basis": HOUR_7D,
                "pressure_mpa": 0.28,
                "pressure_mpa_basis": HOUR_7D,
            },
        ),
        (None, None, None, {}),  # no history at all: no profile, the rules stay quiet
    ],
)
def test_fallback_order(weekly, daily, hourly, expected) -> None:
    assert choose(weekly, daily, hourly) == expected


# --- through the database -------------------------------------------------------------------


def add_meter(conn: psycopg.Connection, device_id: str) -> None:
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) VALUES (%s, "
        "'watermeter', 'wenfeng', 36.1, 114.3, '{\"meter_role\": \"inlet\"}')",
        (device_id,),
    )


def add_readings(
    conn: psycopg.Connection, device_id: str, rows: list[tuple[datetime, float, float | None]]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO watermeter_readings (device_id, ts, received_at, flow_m3_h, "
            "pressure_mpa) VALUES (%s, %s, %s, %s, %s)",
            [(device_id, ts, ts, flow, p) for ts, flow, p in rows],
        )


def test_median_and_mad_of_the_weekday_slot_by_hand(conn) -> None:
    """Monday 10:15-10:30 local of the last 4 weeks: two readings (9, 11) make week 1's
    sample 10; the samples 10, 12, 30, 11 give median 11.5, absolute deviations 1.5, 0.5,
    18.5, 0.5, their median 1.0, σ = 1.4826. Other weekdays' 10:15 (40) do not count."""
    add_meter(conn, "WM-H")
    slot_at = datetime(2026, 11, 30, 10, 15, tzinfo=SHANGHAI).astimezone(UTC)
    rows = [(slot_at - timedelta(weeks=1, minutes=-1), 9.0, 0.30)]
    rows.append((slot_at - timedelta(weeks=1, minutes=-14), 11.0, 0.32))
    for weeks, flow in ((2, 12.0), (3, 30.0), (4, 11.0)):
        rows.append((slot_at - timedelta(weeks=weeks, minutes=-5), flow, 0.30))
    rows += [(slot_at - timedelta(days=d, minutes=-5), 40.0, 0.20) for d in range(1, 7)]
    add_readings(conn, "WM-H", rows)
    profile = load_profiles(conn, NOW).get("WM-H", slot_at.timestamp() + 600)
    assert profile == {
        "flow_m3_h": 11.5,
        "flow_m3_h_sd": pytest.approx(1.4826),
        "flow_m3_h_basis": WEEKDAY_SLOT,
        # pressure samples 0.31, 0.30, 0.30, 0.30: median 0.30, MAD 0
        "pressure_mpa": pytest.approx(0.30),
        "pressure_mpa_sd": pytest.approx(0.0),
        "pressure_mpa_basis": WEEKDAY_SLOT,
    }


def test_falls_back_to_the_7_day_slot_then_the_hour(conn) -> None:
    """One Monday of history at 10:15: the slot over the last 7 days (30, 40, 50, that
    Monday's 20 included); at 10:30 one day only: the hourly profile of 02:00 UTC."""
    add_meter(conn, "WM-F")
    at = datetime(2026, 11, 30, 10, 15, tzinfo=SHANGHAI).astimezone(UTC)
    rows = [(at - timedelta(days=7, minutes=-2), 20.0, None)]
    rows += [(at - timedelta(days=d, minutes=-2), f, None) for d, f in ((1, 30.0), (2, 40.0))]
    rows.append((at - timedelta(days=3, minutes=-2), 50.0, None))
    rows.append((at - timedelta(days=1, minutes=-17), 60.0, None))  # 10:30, one day
    add_readings(conn, "WM-F", rows)
    profiles = load_profiles(conn, NOW)
    assert profiles.get("WM-F", at.timestamp()) == {
        "flow_m3_h": 35.0,
        "flow_m3_h_sd": pytest.approx(1.4826 * 10),
        "flow_m3_h_basis": SLOT_7D,
    }
    hour = hourly_profiles(conn, NOW)[("WM-F", 2)]
    later = profiles.get("WM-F", at.timestamp() + 900)
    assert later == {**hour, "flow_m3_h_basis": HOUR_7D}
    # outside the span a refresh covers: the hourly profile too
    assert profiles.get("WM-F", at.timestamp() - 86_400) == later


# a quarter's readings: (seconds into the quarter, flow, pressure or None)
QUARTER = st.lists(
    st.tuples(
        st.integers(0, 899),
        st.floats(0, 500, allow_nan=False).map(lambda f: round(f, 3)),
        st.one_of(st.none(), st.floats(0, 1).map(lambda p: round(p, 4))),
    ),
    max_size=3,
    unique_by=lambda r: r[0],
)
DAYS_BACK = (1, 2, 3, 4, 5, 6, 7, 14, 21, 28)
# A day ago: every window is below the rollups' watermark (now - 1 h) once refreshed, and
# within the 35 days the 15-min rollup keeps.
RECENT = datetime.now(UTC) - timedelta(days=1)


def reference(history: dict[int, list[tuple[int, float, float | None]]], name: str):
    """What §5.6 asks for one field, in plain Python: (median, σ, basis) or None."""
    index = 1 if name == "flow_m3_h" else 2
    samples = {}
    for d, rows in history.items():
        values = [r[index] for r in rows if r[index] is not None]
        if values:
            samples[d] = statistics.fmean(values)
    for basis, days in ((WEEKDAY_SLOT, (7, 14, 21, 28)), (SLOT_7D, range(1, 8))):
        values = [samples[d] for d in days if d in samples]
        if len(values) >= 2:
            mid = statistics.median(values)
            return mid, 1.4826 * statistics.median(abs(v - mid) for v in values), basis
    return None


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.integers(-4, 7),  # the slot: this many quarters from NOW's
    st.fixed_dictionaries({d: QUARTER for d in DAYS_BACK}),
    st.booleans(),  # the 15-min rollup materialized (migration 033), or the readings read
)
def test_sql_profile_matches_a_python_reference(conn, offset: int, history, rolled) -> None:
    clear(conn)
    add_meter(conn, "WM-R")
    start = datetime.fromtimestamp(RECENT.timestamp() // 900 * 900 + offset * 900, UTC)
    rows = [
        (start - timedelta(days=d) + timedelta(seconds=s), flow, p)
        for d, quarter in history.items()
        for s, flow, p in quarter
    ]
    add_readings(conn, "WM-R", rows)
    if rolled:
        conn.execute(REFRESH_PLAIN)
    profile = load_profiles(conn, RECENT).get("WM-R", start.timestamp() + 450) or {}
    for name in ("flow_m3_h", "pressure_mpa"):
        expected = reference(history, name)
        if expected is None:  # the hourly profile's, or none
            assert profile.get(f"{name}_basis") in (HOUR_7D, None)
            continue
        median, sigma, basis = expected
        assert profile[name] == pytest.approx(median, abs=1e-6)
        assert profile[f"{name}_sd"] == pytest.approx(sigma, abs=1e-6)
        assert profile[f"{name}_basis"] == basis


def clear(conn: psycopg.Connection) -> None:
    """No readings, meters nor rollups (the 15-min rollup goes with the hourly rows)."""
    conn.execute("DELETE FROM watermeter_hourly_data")
    conn.execute("UPDATE rollup_watermarks SET upto = NULL, pending = NULL")
    conn.execute("DELETE FROM watermeter_readings")
    conn.execute("DELETE FROM devices")


def quarter_rows(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT bucket, device_id, n, avg_flow_m3_h FROM watermeter_quarter_data ORDER BY 1, 2"
    ).fetchall()


def test_the_quarter_rollup_follows_the_hourly_refresh_and_late_rows(conn) -> None:
    """Migration 033: the hourly refresh materializes the 15-min means; a late reading below
    the watermark is in them after the next refresh, as in the hourly rows."""
    add_meter(conn, "WM-L")
    at = (datetime.now(UTC) - timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    add_readings(conn, "WM-L", [(at + timedelta(minutes=m), 10.0 + m, None) for m in (1, 7, 20)])
    assert quarter_rows(conn) == []
    conn.execute(REFRESH_PLAIN)
    q0, q1 = at, at + timedelta(minutes=15)
    assert quarter_rows(conn) == [(q0, "WM-L", 2, 14.0), (q1, "WM-L", 1, 30.0)]
    add_readings(conn, "WM-L", [(at + timedelta(minutes=16), 20.0, None)])  # late
    conn.execute(REFRESH_PLAIN)
    assert quarter_rows(conn) == [(q0, "WM-L", 2, 14.0), (q1, "WM-L", 2, 25.0)]
    # kept for 35 days: a reading older than that is not
    add_readings(conn, "WM-L", [(at - timedelta(days=40), 5.0, None)])
    conn.execute(REFRESH_PLAIN)
    assert quarter_rows(conn) == [(q0, "WM-L", 2, 14.0), (q1, "WM-L", 2, 25.0)]


# --- the engine -------------------------------------------------------------------------------


def test_engine_raises_a_burst_on_a_quiet_slot_not_on_the_weekdays_peak(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    """Both meters draw 40 m³/h at this time of day on other weekdays; on this weekday,
    WM-PEAK always draws 100 (a Monday-morning peak, whatever weekday the test runs on).
    100 m³/h now is a burst at WM-QUIET and the usual peak at WM-PEAK, which the hourly
    profile (median 40 over the last 7 days) would have called a burst."""
    now = datetime.now(UTC)
    first = datetime.fromtimestamp(now.timestamp() // 900 * 900 - 900, UTC)
    for device_id, peak in (("WM-PEAK", 100.0), ("WM-QUIET", 40.0)):
        add_meter(conn, device_id)
        rows = []
        for d in (1, 2, 3, 4, 5, 6, 7, 14, 21, 28):
            flow = peak if d % 7 == 0 else 40.0
            for minute in range(0, 45, 5):  # the previous, this and the next quarter
                rows.append((first - timedelta(days=d) + timedelta(minutes=minute), flow, 0.3))
        add_readings(conn, device_id, rows)
    conn.commit()
    assert hourly_profiles(conn, now).get(("WM-PEAK", first.hour), {}).get("flow_m3_h") == 40.0
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        for device_id in ("WM-PEAK", "WM-QUIET"):
            for seconds in (-120, -60):
                pub.publish(
                    telemetry_topic(topic_prefix, "watermeter", device_id),
                    {"ts": int((now.timestamp() + seconds) * 1000), "flow_m3_h": 100.0},
                )
        wait_for(lambda: anomalies(conn), what="WM-QUIET's flow anomaly")
    found = anomalies(conn)
    assert [subject for subject, _ in found] == ["WM-QUIET"]
    detail = found[0][1]
    assert detail["profile.flow_m3_h"] == 40.0
    assert detail["profile.flow_m3_h_basis"] == WEEKDAY_SLOT


def anomalies(conn: psycopg.Connection) -> list[tuple[str, dict]]:
    conn.commit()  # a fresh snapshot
    return conn.execute(
        "SELECT subject, detail FROM alerts WHERE rule_id = 'WS_FLOW_ANOMALY' ORDER BY id"
    ).fetchall()


def test_a_slow_refresh_does_not_hold_up_the_evaluation(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    """A refresh waiting on a lock of the readings table (a stand-in for a slow 4-week query)
    runs in its own thread: the engine goes on evaluating with the last profiles meanwhile,
    and takes the new ones when the refresh is through."""
    now = datetime.now(UTC)
    first = datetime.fromtimestamp(now.timestamp() // 900 * 900 - 900, UTC)
    add_meter(conn, "WM-S")
    rows = [
        (first - timedelta(days=d) + timedelta(minutes=m), 40.0, 0.3)
        for d in (7, 14, 21)
        for m in range(0, 45, 5)
    ]
    add_readings(conn, "WM-S", rows)
    conn.commit()
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)) as service,
        Publisher(mqtt_url) as pub,
        psycopg.connect(database_url) as locker,
    ):
        loaded = service._profiles
        locker.execute("LOCK TABLE watermeter_readings IN ACCESS EXCLUSIVE MODE")
        service._profiles_at = -PROFILE_REFRESH_S  # due: the next reading starts one
        for seconds in (-120, -60):
            pub.publish(
                telemetry_topic(topic_prefix, "watermeter", "WM-S"),
                {"ts": int((now.timestamp() + seconds) * 1000), "flow_m3_h": 100.0},
            )
        wait_for(lambda: anomalies(conn), what="WM-S's flow anomaly while the refresh waits")
        assert service._profiles_loading.locked() and service._profiles is loaded
        locker.rollback()
        wait_for(lambda: not service._profiles_loading.locked(), what="the refresh")
        assert service._profiles is not loaded
        assert service._profiles.get("WM-S", now.timestamp()) == loaded.get("WM-S", now.timestamp())
    assert [subject for subject, _ in anomalies(conn)] == ["WM-S"]


def test_pressure_drop_reads_the_same_profile_and_names_its_basis() -> None:
    """WS_PRESSURE_DROP against a profile as load_profiles gives it: the detail of its alert
    says which basis the expected pressure came from."""
    rule = next(r for r in default_rules().rules if r.id == "WS_PRESSURE_DROP")
    profile = choose(None, {**DAY, "n_flow_m3_h": 0}, HOUR)
    assert profile["pressure_mpa_basis"] == SLOT_7D and profile["flow_m3_h_basis"] == HOUR_7D
    plan, state = make_plan([rule]), DeviceState()
    meter = Device("WM-D", "watermeter", "wenfeng", {"meter_role": "inlet"})
    at = NOW.timestamp()
    opened = evaluate_reading(
        plan, meter, state, {"pressure_mpa": 0.2}, at, at, {"profile": profile}
    )  # 0.1 MPa under 0.3: over 0.05 MPa and 15 %
    assert [t.action for t in opened] == ["open"]
    assert opened[0].detail["profile.pressure_mpa"] == 0.3
    assert opened[0].detail["profile.pressure_mpa_basis"] == SLOT_7D


def test_a_failed_refresh_keeps_the_last_profiles(
    conn, database_url, mqtt_url, topic_prefix, caplog
) -> None:
    """The readings table gone for a moment (renamed): the refresh fails, says so in the
    log, and the engine keeps evaluating against the profiles it had."""
    now = datetime.now(UTC)
    first = datetime.fromtimestamp(now.timestamp() // 900 * 900 - 900, UTC)
    add_meter(conn, "WM-E")
    rows = [
        (first - timedelta(days=d) + timedelta(minutes=m), 40.0, 0.3)
        for d in (7, 14)
        for m in range(0, 45, 5)
    ]
    add_readings(conn, "WM-E", rows)
    conn.commit()
    with running_engine(engine_settings(database_url, mqtt_url, topic_prefix)) as service:
        loaded = service._profiles
        conn.execute("ALTER TABLE watermeter_readings RENAME TO watermeter_readings_away")
        conn.commit()
        try:
            service._refresh_profiles()
            wait_for(lambda: not service._profiles_loading.locked(), what="the refresh")
        finally:
            conn.execute("ALTER TABLE watermeter_readings_away RENAME TO watermeter_readings")
            conn.commit()
        assert service._profiles is loaded
        assert loaded.get("WM-E", now.timestamp())["flow_m3_h_basis"] == WEEKDAY_SLOT
    assert "expected flow profiles not refreshed" in caplog.text
