"""The engine keeps the offline rule's `after_s` by the values it reads (alerts/engine.py,
`offline_inputs`) instead of evaluating it on every reading: for any readings, the
deadline it schedules is the one a fresh evaluation gives (pure, no I/O)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import Engine
from urbanwatch.alerting import Device, default_rules, offline_deadline

T0 = 1_796_054_400.0  # 2026-12-01 00:00 Asia/Shanghai
DEVICES = [
    Device("PERF-WL-1", "waterlog", "wenfeng"),
    Device("PERF-WL-2", "waterlog", "beiguan", {"heartbeat_s": 600}),
    Device("PERF-SL-1", "streetlight", "wenfeng", {"rated_power_w": 150.0}),
    Device("PERF-MH-1", "manhole", "yindu", {"heartbeat_s": 1800}),
]
maybe = st.none() | st.floats(0, 60, allow_nan=False)
waterlog = st.fixed_dictionaries(
    {"depth_cm": maybe, "rain_mm": maybe, "water_present": st.none() | st.booleans()}
)
streetlight = st.fixed_dictionaries(
    {"active_power_w": maybe, "light_state_pct": st.none() | st.sampled_from([0.0, 50.0, 100.0])}
)
manhole = st.fixed_dictionaries({"tilt_deg": maybe})
readings = st.lists(
    st.tuples(
        st.integers(0, len(DEVICES) - 1),
        st.integers(0, 3 * 86400),  # seconds after T0: days and nights
        waterlog,
        streetlight,
        manhole,
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(readings)
def test_the_kept_offline_deadline_is_the_fresh_one(steps: list) -> None:
    engine = Engine(default_rules(), DEVICES)
    for index, dt, wl, sl, mh in sorted(steps, key=lambda s: s[1]):
        device = DEVICES[index]
        fields = {"waterlog": wl, "streetlight": sl, "manhole": mh}[device.kind]
        engine.on_reading(device, fields, T0 + dt, T0 + dt)
        state, plan = engine.states[device.device_id], engine.plan(device)
        # private on purpose: the kept value against the evaluation it replaces
        assert engine._offline_deadline(plan, device, state) == offline_deadline(
            plan, device, state
        )
