"""Any message under the prefix, through the real broker into a running engine: nothing
stops it, every message is taken and acknowledged, and the good readings among the junk
still open and resolve their alerts exactly once each."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts_helpers import engine_settings, events, running_engine
from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher, register
from urbanwatch.topics import gateway_topic, status_topic, telemetry_topic

T0 = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
FIELDS = [
    "ts",
    "tilt_deg",
    "cover_open",
    "ch4_pct_lel",
    "battery_v",
    "depth_cm",
    "device_id",
    "kind",
    "x",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**15),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(-(10**6), 10**6), max_size=2),  # orjson: 64-bit ints
)
BODIES = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=5).map(orjson.dumps),
    st.lists(st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=4), max_size=3).map(
        orjson.dumps
    ),
    st.binary(max_size=40),
    st.sampled_from([b"offline", b"online", b"{}", b"[]", b"null", b'"offline"']),
)


@st.composite
def messages(draw: st.DrawFn, prefix: str) -> list[tuple[str, bytes]]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        device = draw(st.sampled_from(["MH-1", "MH-2", "WL-1", "NOPE-9"]))
        topic = draw(
            st.sampled_from(
                [
                    telemetry_topic(prefix, "manhole", device),
                    telemetry_topic(prefix, "waterlog", device),
                    status_topic(prefix, "manhole", device),
                    gateway_topic(prefix, "gw-1"),
                    f"{prefix}/manhole/{device}/other",
                    f"{prefix}/x/y/telemetry",
                ]
            )
        )
        out.append((topic, draw(BODIES)))
    return out


def test_any_message_leaves_the_engine_running_and_good_readings_counted(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    register(
        conn, [("MH-1", "manhole"), ("MH-2", "manhole"), ("WL-1", "waterlog"), ("MH-P", "manhole")]
    )
    step = itertools.count(1)
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)) as engine,
        Publisher(mqtt_url) as pub,
    ):
        sent = [0]

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(messages(topic_prefix))
        def check(batch: list[tuple[str, bytes]]) -> None:
            n = next(step)
            for topic, payload in batch:
                pub.publish(topic, payload)
            # The probe: MH-P's cover opens and closes in turn, one event each time.
            pub.publish(
                telemetry_topic(topic_prefix, "manhole", "MH-P"),
                {"ts": T0 + n * 1000, "cover_open": n % 2 == 1},
            )
            # Only what the engine subscribes to reaches it: …/+/+/telemetry and …/status.
            sent[0] += sum(t.endswith(("/telemetry", "/status")) for t, _ in batch) + 1
            wait_for(lambda: engine.stats["messages"] == sent[0], what="every message taken")
            wait_for(
                lambda: len([e for e in events(conn) if e[1] == "MH-P"]) == n,
                what=f"probe event {n}",
            )
            assert engine.inbox.empty()

        check()
    probe = [e[2] for e in events(conn) if e[1] == "MH-P"]
    assert (
        probe[0] == "opened"
        and set(probe[1::2]) == {"resolved"}
        and set(probe[2::2]) <= {"reopened"}
    )


def test_a_gateway_element_with_a_nul_device_id_does_not_stop_the_engine(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    """Found by the property above (1 run in 3): a gateway element whose device_id holds a NUL
    byte made the engine look the id up, psycopg raised DataError and the engine's loop
    ended. Now the id is never looked up, and the next reading is evaluated."""
    register(conn, [("MH-P", "manhole")])
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)) as engine,
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(gateway_topic(topic_prefix, "gw-1"), [{"device_id": "MH-\x00", "ts": T0}])
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-P"), {"ts": T0, "cover_open": True}
        )
        wait_for(lambda: engine.stats["messages"] == 2, what="both messages taken")
        wait_for(
            lambda: [e[2] for e in events(conn) if e[1] == "MH-P"] == ["opened"],
            what="the probe's alert",
        )
