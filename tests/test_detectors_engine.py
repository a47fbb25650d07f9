"""The detectors inside the engine on the real broker and database: a circuit fault across an
engine restart (the new engine's detectors carry on from the stored alerts), and flooding
episodes driven through the detector into the database (wl_events kept in step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.detectors import Site, Topology, load_detectors
from alerts.detectors.waterlog import WaterlogDetector
from tests.alerts_helpers import engine_settings, running_engine
from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher
from urbanwatch.alerting import Device
from urbanwatch.queries.alerts import apply_change
from urbanwatch.topics import telemetry_topic


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def night() -> datetime:
    """22:00 in Anyang within the last 24 h (lamps are expected on)."""
    local = datetime.now(UTC) + timedelta(hours=8)
    at = local.replace(hour=22, minute=0, second=0, microsecond=0) - timedelta(hours=8)
    return at - timedelta(days=1) if at > datetime.now(UTC) else at


def add_lamps(conn: psycopg.Connection, n: int) -> list[str]:
    ids = [f"SL-{i}" for i in range(n)]
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) "
        "SELECT id, 'streetlight', 'wenfeng', 36.1, 114.3, jsonb_build_object("
        "'circuit_id', 'CIR-7', 'segment', 'R-7-S00', 'rated_power_w', 100, "
        "'pole_id', 'P-7-' || lpad(ord::text, 3, '0')) "
        "FROM unnest(%s::text[]) WITH ORDINALITY AS t(id, ord)",
        (ids,),
    )
    conn.commit()
    return ids


def rows(conn: psycopg.Connection, rule: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT subject, status, suppressed, parent_id FROM alerts WHERE rule_id = %s ORDER BY id",
        (rule,),
    ).fetchall()


def test_a_circuit_fault_survives_an_engine_restart(conn, database_url, mqtt_url, topic_prefix):
    lamps = add_lamps(conn, 8)
    at = night()
    settings_ = engine_settings(database_url, mqtt_url, topic_prefix)

    def publish(pub: Publisher, lamp: str, offset_s: int, volts: float) -> None:
        power = 0.0 if volts < 20 else 90.0
        pub.publish(
            telemetry_topic(topic_prefix, "streetlight", lamp),
            {"ts": ms(at) + offset_s * 1000, "supply_voltage_v": volts, "active_power_w": power},
        )

    with running_engine(settings_, detectors=load_detectors(conn)), Publisher(mqtt_url) as pub:
        for lamp in lamps[:4]:
            for offset in (0, 180):
                publish(pub, lamp, offset, 0.0)
        wait_for(lambda: len(rows(conn, "SL_CIRCUIT_SUPPLY_LOSS")) == 1, what="the circuit")
    (circuit,) = rows(conn, "SL_CIRCUIT_SUPPLY_LOSS")
    parent = conn.execute(
        "SELECT id FROM alerts WHERE rule_id = 'SL_CIRCUIT_SUPPLY_LOSS'"
    ).fetchone()
    assert circuit[:2] == ("CIR-7", "open")
    assert [(s, sup, p) for s, _, sup, p in rows(conn, "SL_SUPPLY_LOSS")] == [
        (lamp, True, parent[0]) for lamp in lamps[:4]
    ]
    conn.commit()
    # a new engine: its detectors are seeded from the unresolved alerts
    with running_engine(settings_, detectors=load_detectors(conn)), Publisher(mqtt_url) as pub:
        publish(pub, lamps[4], 0, 0.0)  # a fifth lamp joins the open circuit alert
        publish(pub, lamps[4], 180, 0.0)
        wait_for(lambda: len(rows(conn, "SL_SUPPLY_LOSS")) == 5, what="the fifth lamp")
        wait_for(lambda: rows(conn, "SL_SUPPLY_LOSS")[4][2], what="the fifth lamp suppressed")
        for lamp in lamps[:5]:
            publish(pub, lamp, 600, 230.0)
        wait_for(
            lambda: [r[1] for r in rows(conn, "SL_CIRCUIT_SUPPLY_LOSS")] == ["resolved"],
            what="the circuit back",
        )
        wait_for(
            lambda: {r[1] for r in rows(conn, "SL_SUPPLY_LOSS")} == {"resolved"}, what="lamps back"
        )
    assert len(rows(conn, "SL_CIRCUIT_SUPPLY_LOSS")) == 1  # one alert across the restart
    opened = conn.execute(
        "SELECT count(*) FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
        "WHERE a.rule_id = 'SL_CIRCUIT_SUPPLY_LOSS' AND e.event = 'opened'"
    ).fetchone()
    assert opened == (1,)


POINT = Site("WL-D-001", "waterlog", "wenfeng", attrs={"role": "depth", "point_id": "WLP-001"})
GAUGE = Site("WL-R-001", "waterlog", "wenfeng", attrs={"role": "rain"})
T0 = datetime(2026, 7, 20, 10, 0, tzinfo=UTC).timestamp()

step = st.tuples(
    st.integers(30, 1800),  # seconds to the next reading
    st.one_of(st.floats(0, 80, allow_nan=False), st.none()),  # depth, or a rain reading
    st.floats(0, 10, allow_nan=False),  # rain mm
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(step, max_size=60))
def test_any_depth_series_gives_consistent_episodes_in_the_database(conn, series) -> None:
    conn.execute("TRUNCATE wl_events, alert_events, alerts CASCADE")
    det = WaterlogDetector(Topology.from_sites([POINT, GAUGE]))
    t, depths = T0, []
    for dt, depth, rain in series:
        t += dt
        if depth is None:
            site, fields = GAUGE, {"rain_mm": rain}
        else:
            site, fields = POINT, {"depth_cm": depth}
            depths.append((t, depth))
        device = Device(site.device_id, site.kind, site.district, site.attrs)
        for change in det.on_reading(device, fields, t):
            apply_change(conn, change, reopen_within_s=3600)
    events = conn.execute(
        "SELECT e.open, e.started_at, e.ended_at, e.max_depth_cm, e.duration_above_15cm_min, "
        "e.time_to_drain_min, e.storm, a.status FROM wl_events e JOIN alerts a ON a.id = e.alert_id "
        "ORDER BY e.started_at"
    ).fetchall()
    flooded = [d for _, d in depths if d >= 15]
    assert bool(events) == bool(flooded)
    assert sum(e[0] for e in events) <= 1  # at most the last one still open
    storms = conn.execute("SELECT count(*) FROM alerts WHERE rule_id = 'STORM_INCIDENT'").fetchone()
    for is_open, started, ended, max_depth, above, drain, storm, status in events:
        assert is_open == (status != "resolved")
        assert 15 - 0.05 <= max_depth <= max(flooded) + 0.05  # stored to 0.1 cm
        assert above >= 0 and storm is not None and storms[0] >= 1
        inside = [d for ts, d in depths if started.timestamp() <= ts]
        assert max_depth <= max(inside) + 0.05
        if not is_open:
            assert ended is not None and ended > started and drain is not None and drain >= 0


def test_the_lighting_ledger_places_lamps_when_it_exists(conn) -> None:
    lamps = add_lamps(conn, 3)  # pole numbers order them SL-0, SL-1, SL-2 on R-7-S00
    (detector, *_) = load_detectors(conn)
    assert detector.top.segment_order == {"R-7-S00": lamps}  # type: ignore[union-attr]
    # the lighting ledger (migration 015) places them: position along the segment
    conn.execute(
        "INSERT INTO lighting_road_segments (segment_id, district, road_name, road_class, "
        "length_m) VALUES ('SEG-9', 'wenfeng', '文峰大道', 'trunk', 500)"
    )
    conn.execute(
        "INSERT INTO lighting_facilities (facility_id, facility_type, district, segment_id, "
        "position_m, lamp_type, rated_power_w, device_id, installed_on, retired_on) VALUES "
        "('F1', 'lamp', 'wenfeng', 'SEG-9', 30, 'LED', 100, 'SL-0', '2019-01-01', NULL), "
        "('F2', 'lamp', 'wenfeng', 'SEG-9', 10, 'LED', 100, 'SL-1', '2019-01-01', NULL), "
        "('F3', 'lamp', 'wenfeng', 'SEG-9', 20, 'LED', 100, 'SL-2', '2019-01-01', NULL), "
        "('F4', 'lamp', 'wenfeng', 'SEG-9', 0, 'LED', 100, 'SL-9', '2019-01-01', NULL), "
        "('F5', 'lamp', 'wenfeng', 'SEG-9', 5, 'LED', 100, 'SL-2', '2019-01-01', '2020-01-01')"
    )
    conn.commit()
    (detector, *_) = load_detectors(conn)
    assert detector.top.segment_order == {"SEG-9": ["SL-1", "SL-2", "SL-0"]}  # type: ignore[union-attr]
