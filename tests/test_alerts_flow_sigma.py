"""WS_FLOW_ANOMALY's 3σ term (docs/domain.md §5.6: r > max(3σ_slot, 20 % × Q_expected,
5 m³/h)): σ of the slot from the watermeter rollups (`profile.flow_m3_h_sd`), the rule with and
without it, and the engine reading it from the database. σ is 1.4826 × the median absolute deviation, robust
to a past burst in the slot as the median is."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts_helpers import alerts, engine_settings, running_engine
from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher
from urbanwatch.alerting import Device, DeviceState, default_rules, evaluate_reading, make_plan
from urbanwatch.alerting.model import RuleSet
from urbanwatch.queries.alerts import hourly_profiles
from urbanwatch.topics import telemetry_topic

RULE = next(r for r in default_rules().rules if r.id == "WS_FLOW_ANOMALY")
T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC).timestamp()
INLET = Device("WM-1", "watermeter", "wenfeng", {"meter_role": "inlet"})


def run(flows: list[float], profile: dict[str, float], rule: Any = RULE) -> list[tuple[str, int]]:
    """Inlet readings 15 min apart against `profile`: the (action, reading index) emitted."""
    plan, state, out = make_plan([rule]), DeviceState(), []
    for i, flow in enumerate(flows):
        at = T0 + 900 * i
        for tr in evaluate_reading(
            plan, INLET, state, {"flow_m3_h": flow}, at, at, {"profile": profile}
        ):
            out.append((tr.action, i))
    return out


QUIET = {"flow_m3_h": 40.0, "flow_m3_h_sd": 1.0}  # 3σ = 3 m³/h: 20 % (8 m³/h) decides
NOISY = {"flow_m3_h": 40.0, "flow_m3_h_sd": 4.0}  # 3σ = 12 m³/h decides
NO_SD = {"flow_m3_h": 40.0}  # fewer than 2 days of the slot: the 3σ term is left out


@pytest.mark.parametrize(
    ("flows", "profile", "expected"),
    [
        ([50, 50], QUIET, [("open", 1)]),  # r = 10 > max(3, 8, 5)
        ([50, 50], NO_SD, [("open", 1)]),  # the same without σ
        ([50, 50], NOISY, []),  # r = 10 < 3σ = 12: ordinary variation of this slot
        ([55, 55], NOISY, [("open", 1)]),  # r = 15 > 12
        ([47, 47], QUIET, []),  # r = 7: over 3σ and 5 m³/h, under 20 %
        # clearing at half the threshold: r = 5 holds the alert without σ (≤ 4 needed) ...
        ([55, 55, 45, 45], NO_SD, [("open", 1)]),
        # ... and clears it where the slot's spread is wide (≤ 6 m³/h)
        ([55, 55, 45, 45], NOISY, [("open", 1), ("clear", 3)]),
    ],
)
def test_three_sigma_term(flows: list[float], profile: dict[str, float], expected) -> None:
    assert run(flows, profile) == expected


def test_sigma_is_a_parameter() -> None:
    off = RULE.model_copy(update={"params": {**RULE.params, "sigma": 0}})
    assert run([50, 50], NOISY, off) == [("open", 1)]
    wider = RULE.model_copy(update={"params": {**RULE.params, "sigma": 4}})
    assert run([55, 55], NOISY, wider) == []  # r = 15 < 4σ = 16


def test_profile_spread_names_are_checked_at_load() -> None:
    text = RULE.model_dump(mode="json", exclude_none=True)
    ok = {**text, "id": "WS_X", "trigger": "flow_m3_h > profile.pressure_mpa_sd"}
    RuleSet.model_validate({"rules": [ok]})
    bad = {**text, "id": "WS_X", "trigger": "flow_m3_h > profile.colour_sd"}
    with pytest.raises(ValueError, match=r"profile\.colour_sd: watermeter readings have no field"):
        RuleSet.model_validate({"rules": [bad]})


# --- σ from the rollups ---------------------------------------------------------------------


def add_meter(conn: psycopg.Connection, device_id: str) -> None:
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) VALUES (%s, "
        '\'watermeter\', \'wenfeng\', 36.1, 114.3, \'{"meter_role": "inlet", "dma_id": "D"}\')',
        (device_id,),
    )


def add_days(conn: psycopg.Connection, device_id: str, at: datetime, flows: list[float]) -> None:
    """One reading per day at `at`'s hour, on the days before it: that hour's mean."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO watermeter_readings (device_id, ts, received_at, flow_m3_h) "
            "VALUES (%s, %s, %s, %s)",
            [(device_id, at - timedelta(days=i + 1), at, f) for i, f in enumerate(flows)],
        )


def robust_sigma(values: list[float]) -> float:
    mid = statistics.median(values)
    return 1.4826 * statistics.median(abs(v - mid) for v in values)


def profile_of(conn: psycopg.Connection, flows: list[float]) -> dict[str, float]:
    """WM-P's profile at 10:00 UTC with `flows` as that hour's means on the days before."""
    now = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
    at = now - timedelta(hours=2)
    conn.execute("DELETE FROM watermeter_readings")
    conn.execute("DELETE FROM devices")
    add_meter(conn, "WM-P")
    add_days(conn, "WM-P", at, flows)
    conn.commit()
    return hourly_profiles(conn, now)[("WM-P", at.hour)]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=6))
def test_profile_spread_is_a_robust_sigma_of_the_slots_hourly_means(conn, flows) -> None:
    profile = profile_of(conn, flows)
    assert profile["flow_m3_h"] == pytest.approx(statistics.median(flows), rel=1e-9, abs=1e-6)
    if len(flows) < 2:
        assert "flow_m3_h_sd" not in profile
    else:
        assert profile["flow_m3_h_sd"] == pytest.approx(robust_sigma(flows), abs=1e-6)


def test_a_past_burst_in_the_slot_does_not_widen_it(conn) -> None:
    """One day of six with a 30 m³/h burst: σ stays that of the other days (0 here), where a
    standard deviation (12.2) would put 3σ at 37 m³/h and hide the next burst."""
    assert profile_of(conn, [40, 40, 40, 70, 40, 40]) == {"flow_m3_h": 40.0, "flow_m3_h_sd": 0.0}


def test_engine_leaves_a_noisy_slot_alone_and_alerts_on_a_quiet_one(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    at = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=5, second=0, microsecond=0)
    for device_id, days in (("WM-N", [30, 50, 30, 50, 40, 40]), ("WM-Q", [40] * 6)):
        add_meter(conn, device_id)
        add_days(conn, device_id, at, days)  # both: median 40; σ 14.8 and 0
    conn.commit()
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        for device_id in ("WM-N", "WM-Q"):  # r = 12: over 20 % and 5 m³/h, under 3σ of WM-N
            for minutes in (10, 25):
                ts = int((at + timedelta(minutes=minutes)).timestamp() * 1000)
                pub.publish(
                    telemetry_topic(topic_prefix, "watermeter", device_id),
                    {"ts": ts, "flow_m3_h": 52.0},
                )
        wait_for(lambda: anomalies(conn), what="WM-Q's flow anomaly")
    assert anomalies(conn) == ["WM-Q"]


def anomalies(conn: psycopg.Connection) -> list[str]:
    """The subjects of flow anomalies (the meters' history is old: they are offline too)."""
    return [s for r, s, *_ in alerts(conn) if r == "WS_FLOW_ANOMALY"]
