"""The pure parser: every dead-letter reason, gateway batches, status messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from ingest.parse import Limits, Registry, parse_message
from urbanwatch.kinds import measurement_fields

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(prefix="uw", max_payload_bytes=2048)
KINDS = {"mh-1": "manhole", "wl-1": "waterlog", "sl-1": "streetlight", "wm-1": "watermeter"}
REGISTRY = Registry(KINDS, dict.fromkeys(KINDS, "gw-1"))  # every device reports through gw-1
TS = "2026-05-01T11:59:00+08:00"  # an offset other than UTC: 03:59 UTC, 8 h old


def dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


@pytest.mark.parametrize(
    ("topic", "payload", "code", "reason_part"),
    [
        ("uw/manhole/mh-1/telemetry", b"x" * 3000, "oversized", "3000 bytes"),
        ("uw/bogus/mh-1/telemetry", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/manhole/mh-1/extra/telemetry", dumps({"ts": TS}), "bad_topic", "topic"),
        # A7: every shape under the prefix ends as a dead letter, none vanishes
        ("uw/manhole/mh-1/telemetry/", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw//mh-1/telemetry", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/manhole//telemetry", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/manhole/mh-1/telemetri", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/manhole/mh-1", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/gateway/gw-1/status", dumps({"ts": TS}), "bad_topic", "topic"),
        ("uw/manhole/mh-1/telemetry", b"{not json", "invalid_json", "not valid JSON"),
        ("uw/manhole/mh-1/telemetry", b"\xff\xfe", "invalid_json", "not valid JSON"),
        ("uw/manhole/mh-1/telemetry", dumps([1, 2]), "invalid_json", "JSON object"),
        (
            "uw/manhole/nobody/telemetry",
            dumps({"ts": TS, "tilt_deg": 1}),
            "unknown_device",
            "device_id: 'nobody'",
        ),
        (
            "uw/waterlog/mh-1/telemetry",
            dumps({"ts": TS, "depth_cm": 1}),
            "kind_mismatch",
            "registered as manhole",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"tilt_deg": 1}),
            "missing_field",
            "ts: Field required",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 181}),
            "out_of_range",
            "tilt_deg: Input should be less than or equal to 180",
        ),
        (
            "uw/streetlight/sl-1/telemetry",
            dumps({"ts": TS, "power_factor": 1.2}),
            "out_of_range",
            "power_factor",
        ),
        (
            "uw/streetlight/sl-1/telemetry",
            dumps({"ts": TS, "supply_voltage_v": 400}),
            "out_of_range",
            "supply_voltage_v",
        ),
        (
            "uw/waterlog/wl-1/telemetry",
            dumps({"ts": TS, "depth_cm": -1}),
            "out_of_range",
            "depth_cm",
        ),
        (
            "uw/watermeter/wm-1/telemetry",
            dumps({"ts": TS, "flow_m3_h": -5}),
            "out_of_range",
            "flow_m3_h",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "cover_open": "maybe"}),
            "invalid_field",
            "cover_open",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "2026-05-01T11:00:00", "tilt_deg": 1}),
            "invalid_field",
            "ts: Input should have timezone info",
        ),
        ("uw/manhole/mh-1/telemetry", dumps({"ts": True, "tilt_deg": 1}), "invalid_field", "ts"),
        # A2: no number may escape as an exception
        ("uw/manhole/mh-1/telemetry", b'{"ts": 1e23, "tilt_deg": 1}', "invalid_field", "ts:"),
        ("uw/manhole/mh-1/telemetry", b'{"ts": -1e23, "tilt_deg": 1}', "invalid_field", "ts:"),
        ("uw/manhole/mh-1/status", b'{"ts": 1e23, "status": "online"}', "invalid_field", "ts:"),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "0001-01-01T00:00:00+01:00", "tilt_deg": 1}),
            "stale_timestamp",
            "ts: 0001-01-01T00:00:00+01:00 is older",
        ),
        # A8: strict types, and one reading of ts
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "1777636740", "tilt_deg": 1}),
            "invalid_field",
            "ts:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "1777636740000", "tilt_deg": 1}),
            "invalid_field",
            "ts:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": True}),
            "invalid_field",
            "tilt_deg:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": "1.5"}),
            "invalid_field",
            "tilt_deg:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "cover_open": "yes"}),
            "invalid_field",
            "cover_open:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "cover_open": 1}),
            "invalid_field",
            "cover_open:",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "vibration_events": 2.0}),
            "invalid_field",
            "vibration_events:",
        ),
        # A9: the body's kind must be the topic's
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "kind": "waterlog"}),
            "kind_mismatch",
            "kind: the topic says manhole",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "kind": 7}),
            "invalid_field",
            "kind:",
        ),
        # A1, A3: what the database cannot store is refused here, naming the field
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "note": "a\u0000b"}),
            "db_rejected",
            "note: contains a NUL",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "a\u0000b": 1}),
            "db_rejected",
            "NUL",
        ),
        (
            "uw/manhole/mh-1/status",
            dumps({"status": "online", "detail": ["x\u0000"]}),
            "db_rejected",
            "detail[0]: contains a NUL",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            b'{"ts": "%s", "tilt_deg": 1, "deep": %s1%s}' % (TS.encode(), b"[" * 600, b"]" * 600),
            "invalid_field",
            "deep[0][0][0]",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "temp_c": 20}),
            "no_measurement",
            "no measurement",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "2026-05-01T12:30:00Z", "tilt_deg": 1}),
            "future_timestamp",
            "1800 s ahead",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": "2026-04-20T00:00:00Z", "tilt_deg": 1}),
            "stale_timestamp",
            "older than the accepted 72 h",
        ),
        (
            "uw/manhole/mh-1/telemetry",
            dumps({"ts": TS, "tilt_deg": 1, "device_id": "mh-2"}),
            "invalid_field",
            "device_id: 'mh-2' does not match",
        ),
        ("uw/manhole/mh-1/status", dumps({"status": "Gone Fishing"}), "invalid_field", "status"),
        (
            "uw/manhole/mh-1/status",
            dumps({"status": "online", "ts": "2030-01-01T00:00:00Z"}),
            "future_timestamp",
            "ts:",
        ),
        (
            "uw/manhole/mh-1/status",
            dumps({"status": "online", "ts": "9999-12-31T23:30:00-01:00"}),
            "future_timestamp",
            "ts: 9999-12-31T23:30:00-01:00 is",
        ),
        ("uw/manhole/mh-1/status", dumps(42), "invalid_json", "status"),
        ("uw/manhole/mh-1/status", b"Gone Fishing", "invalid_json", "not valid JSON"),
        ("uw/gateway/gw-1/telemetry", dumps({"device_id": "mh-1"}), "invalid_json", "JSON array"),
    ],
)
def test_refusals_name_their_reason(
    topic: str, payload: bytes, code: str, reason_part: str
) -> None:
    parsed = parse_message(topic, payload, NOW, REGISTRY, LIMITS)
    assert parsed.rows == [] and parsed.status == []
    [dead] = parsed.dead
    assert (dead.reason_code, dead.topic, dead.payload) == (code, topic, payload)
    assert reason_part in dead.reason


def test_reading_maps_to_columns_in_table_order() -> None:
    payload = dumps(
        {
            "ts": 1777636740000,
            "tilt_deg": 3.5,
            "cover_open": False,
            "battery_v": 3.6,
            "vendor_code": "X1",
        }
    )
    [row] = parse_message("uw/manhole/mh-1/telemetry", payload, NOW, REGISTRY, LIMITS).rows
    columns = ("ts", "device_id", "received_at", *measurement_fields("manhole"), "extra")
    values = dict(zip(columns, row.values, strict=True))
    assert values["ts"] == datetime(2026, 5, 1, 11, 59, tzinfo=UTC)
    assert (values["device_id"], values["received_at"]) == ("mh-1", NOW)
    assert (values["tilt_deg"], values["cover_open"], values["battery_v"]) == (3.5, False, 3.6)
    assert values["water_distance_m"] is None
    assert values["extra"] == {"vendor_code": "X1"}


def test_iso_timestamp_with_offset_is_converted_to_utc() -> None:
    [row] = parse_message(
        "uw/waterlog/wl-1/telemetry", dumps({"ts": TS, "depth_cm": 12}), NOW, REGISTRY, LIMITS
    ).rows
    assert row.values[0] == datetime(2026, 5, 1, 3, 59, tzinfo=UTC)


def test_gateway_batch_keeps_good_siblings_of_bad_elements() -> None:
    ok_ts = (NOW - timedelta(minutes=1)).isoformat()
    batch = [
        {"device_id": "mh-1", "ts": ok_ts, "tilt_deg": 2},
        {"device_id": "wl-1", "ts": ok_ts, "depth_cm": 900},
        {"device_id": "ghost", "ts": ok_ts, "depth_cm": 1},
        "not an object",
        {"ts": ok_ts, "depth_cm": 1},
        {"device_id": "sl-1", "kind": "waterlog", "ts": ok_ts, "depth_cm": 1},
        {"device_id": "wm-1", "ts": ok_ts, "flow_m3_h": 12.5, "pressure_mpa": 0.31},
    ]
    parsed = parse_message("uw/gateway/gw-1/telemetry", dumps(batch), NOW, REGISTRY, LIMITS)
    assert [(r.kind, r.values[1]) for r in parsed.rows] == [
        ("manhole", "mh-1"),
        ("watermeter", "wm-1"),
    ]
    assert [(d.element_index, d.reason_code, d.device_id) for d in parsed.dead] == [
        (1, "out_of_range", "wl-1"),
        (2, "unknown_device", "ghost"),
        (3, "invalid_json", None),
        (4, "missing_field", None),
        (5, "kind_mismatch", "sl-1"),
    ]
    assert parsed.dead[0].reason.startswith("[1].depth_cm:")
    assert all(d.payload == dumps(batch) for d in parsed.dead)


@pytest.mark.parametrize(
    ("payload", "status", "ts"),
    [
        (b'"offline"', "offline", NOW),
        (b"offline", "offline", NOW),
        (
            dumps({"status": "online", "ts": "2026-05-01T11:58:00Z", "fw": "1.2"}),
            "online",
            datetime(2026, 5, 1, 11, 58, tzinfo=UTC),
        ),
    ],
)
def test_status_messages(payload: bytes, status: str, ts: datetime) -> None:
    parsed = parse_message("uw/manhole/mh-1/status", payload, NOW, REGISTRY, LIMITS)
    [event] = parsed.status
    assert (event.device_id, event.status, event.ts) == ("mh-1", status, ts)


def test_age_limit_can_be_disabled() -> None:
    limits = Limits(prefix="uw", max_age=None)
    parsed = parse_message(
        "uw/manhole/mh-1/telemetry",
        dumps({"ts": "2021-01-01T00:00:00Z", "tilt_deg": 1}),
        NOW,
        REGISTRY,
        limits,
    )
    assert len(parsed.rows) == 1 and parsed.dead == []


@pytest.mark.parametrize(
    "topic",
    [
        "other/manhole/mh-1/telemetry",  # another deployment's (a stale subscription)
        "uwx/manhole/mh-1/telemetry",
        "uw/alerts/manhole/mh-1",  # urbanwatch's own outbound topic
        "uw/alerts",
    ],
)
def test_topics_that_are_not_ours_are_ignored_not_stored(topic: str) -> None:
    parsed = parse_message(topic, dumps({"ts": TS, "tilt_deg": 1}), NOW, REGISTRY, LIMITS)
    assert (parsed.rows, parsed.dead, parsed.status, parsed.ignored) == ([], [], [], 1)


def test_integers_beyond_64_bits_in_extra_fields_are_kept_exactly() -> None:
    big = 123456789012345678901234567890
    payload = b'{"ts": "%s", "tilt_deg": 1, "serial": %d, "nested": {"n": -%d}, "f": 1e30}' % (
        TS.encode(),
        big,
        big,
    )
    [row] = parse_message("uw/manhole/mh-1/telemetry", payload, NOW, REGISTRY, LIMITS).rows
    assert row.values[-1] == {"serial": big, "nested": {"n": -big}, "f": 1e30}
    batch = b'[{"device_id": "wl-1", "ts": "%s", "depth_cm": 1, "id": %d}]' % (TS.encode(), big)
    [row] = parse_message("uw/gateway/gw-1/telemetry", batch, NOW, REGISTRY, LIMITS).rows
    assert row.values[-1] == {"id": big} and row.element == 0


def test_a_poison_element_of_a_gateway_batch_refuses_only_itself() -> None:
    ok_ts = (NOW - timedelta(minutes=1)).isoformat()
    batch = (
        b'[{"device_id": "mh-1", "ts": "%s", "tilt_deg": 2},'
        b' {"device_id": "wl-1", "ts": 1e23, "depth_cm": 1},'
        b' {"device_id": "wl-1", "ts": "%s", "depth_cm": 1, "x": "\\u0000"},'
        b' {"device_id": "sl-1", "ts": "%s", "power_state": "on"}]'
    ) % (ok_ts.encode(), ok_ts.encode(), ok_ts.encode())
    parsed = parse_message("uw/gateway/gw-1/telemetry", batch, NOW, REGISTRY, LIMITS)
    assert [(r.values[1], r.element) for r in parsed.rows] == [("mh-1", 0), ("sl-1", 3)]
    assert [(d.element_index, d.reason_code) for d in parsed.dead] == [
        (1, "invalid_field"),
        (2, "db_rejected"),
    ]
    assert parsed.dead[0].reason.startswith("[1].ts:")
    assert parsed.dead[1].reason.startswith("[2].x: contains a NUL")


def test_a_gateway_reports_only_for_devices_registered_behind_it() -> None:
    ok_ts = (NOW - timedelta(minutes=1)).isoformat()
    registry = Registry(KINDS, {"mh-1": "gw-1", "wl-1": "gw-2"})  # sl-1: behind no gateway
    batch = [
        {"device_id": "mh-1", "ts": ok_ts, "tilt_deg": 1},
        {"device_id": "wl-1", "ts": ok_ts, "depth_cm": 1},
        {"device_id": "sl-1", "ts": ok_ts, "power_state": "on"},
    ]
    parsed = parse_message("uw/gateway/gw-1/telemetry", dumps(batch), NOW, registry, LIMITS)
    assert [r.values[1] for r in parsed.rows] == ["mh-1"]
    assert [(d.element_index, d.reason_code, d.device_id) for d in parsed.dead] == [
        (1, "foreign_device", "wl-1"),
        (2, "foreign_device", "sl-1"),
    ]
    assert parsed.dead[0].reason == "[1].device_id: 'wl-1' is not registered behind gateway 'gw-1'"
