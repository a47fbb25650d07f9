"""The depth sensor's reporting rules (docs/domain.md §3.2), for any depth series: a report
at least every 5 min in rain mode and every minute at or above 15 cm, and an extra report
(加报) when rain mode starts, when water appears, when the depth reaches 15 cm and on every
change of 2 cm or more at or above it."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.devices import DepthReports
from simulators.params import Params
from simulators.waterlog import CHANGE_CM, PRESENT_CM, decide

P = Params()
T0 = 1_719_800_000_000
L1 = P.waterlog_flood_cm
RAIN_MS = P.waterlog_rain_interval_s * 1000
FLOOD_MS = P.waterlog_flood_interval_s * 1000
DRY_MS = P.waterlog_dry_interval_s * 1000
RAIN_MODE_MS = int(P.waterlog_rain_mode_exit_min * 60_000)


@dataclass(frozen=True)
class Sample:
    t: int
    depth: float
    raining: bool
    reported: bool

    @property
    def wet(self) -> bool:
        return self.raining or self.depth >= PRESENT_CM


def drive(series: list[tuple[float, bool, int | None]]) -> tuple[list[Sample], int]:
    """Feed the sensor one (depth, raining, wake) per sample: it samples when it asks to, or
    `wake` seconds after its previous sample if that comes first (rain starting, a fault);
    return the samples and when it would sample next."""
    state, t, samples = DepthReports(), T0, []
    for depth, raining, wake in series:
        if wake is not None and samples:
            t = min(t, samples[-1].t + wake * 1000)
        reported, nxt = decide(state, P, t, depth, depth >= PRESENT_CM, raining)
        samples.append(Sample(t, depth, raining, reported))
        assert nxt > t
        t = nxt
    return samples, t


def walk(
    start: float, steps: list[tuple[float, bool, int | None]]
) -> list[tuple[float, bool, int | None]]:
    depth, out = start, []
    for delta, raining, wake in steps:
        depth = min(max(depth + delta, 0.0), 80.0)
        out.append((round(depth, 1), raining, wake))
    return out


depths = st.floats(0, 60, allow_nan=False).map(lambda x: round(x, 1))
wakes = st.one_of(st.none(), st.none(), st.integers(1, 4000))
random_series = st.lists(st.tuples(depths, st.booleans(), wakes), min_size=1, max_size=200)
walks = st.builds(
    walk,
    depths,
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.0, 0.1, -0.1, 0.6, -0.6, 1.9, 2.0, 2.5, -2.5, -8.0]),
            st.booleans(),
            wakes,
        ),
        min_size=1,
        max_size=400,
    ),
)
around_l1 = st.builds(
    walk,
    st.floats(13, 17).map(lambda x: round(x, 1)),
    st.lists(
        st.tuples(st.sampled_from([0.3, -0.3, 0.6, -0.6, 1.2, 2.5, -2.5]), st.just(True), wakes),
        min_size=1,
        max_size=100,
    ),
)
rain_then_dry = st.builds(
    lambda wet, dry: [(d, True, None) for d in wet] + [(0.0, False, None)] * dry,
    st.lists(depths, max_size=60),
    st.integers(1, 400),
)
series_st = st.one_of(random_series, walks, around_l1, rain_then_dry)


@settings(max_examples=300, deadline=None)
@given(series_st)
def test_reports_follow_the_cadence_rules(series):
    samples, next_sample = drive(series)
    reports = [s for s in samples if s.reported]
    assert samples[0].reported  # a sensor's first sample is reported
    # Never longer than the interval between reports: 5 min while in rain mode (a wet sample
    # in the last 30 min) and 1 min while the depth stays at or above 15 cm. The next sample
    # bounds the next report from below, so a sensor that stops sampling fails too.
    ends = [r.t for r in reports[1:]] + [next_sample]
    for r, end in zip(reports, ends, strict=True):
        seen_wet = [s.t for s in samples if s.wet and s.t <= r.t]
        if seen_wet and seen_wet[-1] + RAIN_MODE_MS > r.t + RAIN_MS:
            assert end - r.t <= RAIN_MS, (r, end)
        between = [s for s in samples if r.t < s.t < end]
        if r.depth >= L1 and all(s.depth >= L1 for s in between):
            assert end - r.t <= FLOOD_MS, (r, end)
    # Extra reports at once, and every report has a reason.
    last: Sample | None = None
    previous: Sample | None = None
    last_wet = None
    for s in samples:
        was_rain_mode = (
            last_wet is not None and previous is not None and previous.t - last_wet < RAIN_MODE_MS
        )
        last_wet = s.t if s.wet else last_wet
        rain_mode = last_wet is not None and s.t - last_wet < RAIN_MODE_MS
        if last is None:
            reasons = {"first"}
        else:
            interval = FLOOD_MS if s.depth >= L1 else RAIN_MS if rain_mode else DRY_MS
            reasons = {
                "due": s.t - last.t >= interval,
                "rain mode": rain_mode and not was_rain_mode,
                "water": s.depth >= PRESENT_CM
                and previous is not None
                and previous.depth < PRESENT_CM,
                "reaches L1": last.depth < L1 <= s.depth,
                "2 cm": max(s.depth, last.depth) >= L1 and abs(s.depth - last.depth) >= CHANGE_CM,
            }
            reasons = {k for k, v in reasons.items() if v}
        assert s.reported == bool(reasons), (s, last, reasons)
        last = s if s.reported else last
        previous = s


def test_a_dry_sensor_sends_its_heartbeat_hourly_and_nothing_else():
    samples, _ = drive([(0.0, False, None)] * 5)
    assert [s.t - T0 for s in samples] == [i * DRY_MS for i in range(5)]
    assert all(s.reported for s in samples)


def test_a_rising_flood_is_reported_every_2_cm():
    # Rain from the first sample, water at the third, then 0.7 cm more every 10-s sample.
    series = [(0.0, True, None)] * 2 + [(round(0.6 + 0.7 * i, 1), True, None) for i in range(42)]
    samples, _ = drive(series)
    assert {s.t - p.t for p, s in pairwise(samples)} == {10_000}
    reported = [(round((s.t - T0) / 1000), s.depth) for s in samples if s.reported]
    assert reported == [
        (0, 0.0),  # rain mode starts
        (20, 0.6),  # water is detected
        (230, 15.3),  # the depth reaches L1
        *[(260 + 30 * k, round(17.4 + 2.1 * k, 1)) for k in range(6)],  # every 2 cm
    ]
