"""The nightly DMA rules: MNF, baseline and completeness as pure functions, then `urbanwatch
alerts daily` over ten nights of simulated DMA data with a burst on the last one."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.detectors import DetectorConfig, build_detectors, parse_config
from alerts.detectors import daily as d
from alerts.detectors.cli import parse_night, run_night
from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from urbanwatch import cli, registry
from urbanwatch.errors import UsageError

NIGHT = date(2026, 11, 20)
START, END = d.night_window(NIGHT)


def buckets(values: list[float | None], meters: int = 1) -> list[tuple[datetime, float, int]]:
    return [
        (START + timedelta(minutes=15 * i), v, meters)
        for i, v in enumerate(values)
        if v is not None
    ]


@pytest.mark.parametrize(
    ("values", "mnf", "valid"),
    [
        ([10.0] * 20, 10.0, True),
        ([20, 20, 8, 8, 8, 8, 20, *[20] * 13], 8.0, True),
        ([20, 8, 20, 8, 20, 8, *[20] * 14], 14.0, True),  # no single low hour: mean of 4
        ([9.0] * 17 + [None] * 3, 9.0, False),  # 85 % of the buckets: invalid
        ([9.0] * 18 + [None] * 2, 9.0, True),  # 90 %
        ([None] * 20, None, False),
    ],
)
def test_minimum_night_flow_is_the_lowest_hour_of_complete_buckets(values, mnf, valid) -> None:
    night = d.minimum_night_flow(buckets(values), 1, START, END)
    assert (night.mnf, night.valid) == (mnf, valid)
    if mnf is not None and values[2] == 8:
        assert night.mnf_at == START + timedelta(minutes=30)


def test_a_bucket_counts_only_when_every_inlet_reported() -> None:
    rows = buckets([10.0] * 20, meters=2)[:10] + buckets([4.0] * 20, meters=1)[10:]
    night = d.minimum_night_flow(rows, 2, START, END)
    assert (night.completeness, night.valid, night.mnf) == (0.5, False, 10.0)


def past(values: list[float | None], flagged: frozenset[int] = frozenset()) -> list[d.Past]:
    return [
        d.Past(NIGHT - timedelta(days=len(values) - i), v, v is not None, None, 40.0, i in flagged)
        for i, v in enumerate(values)
    ]


@pytest.mark.parametrize(
    ("values", "flagged", "baseline", "nights"),
    [
        ([10.0] * 14, frozenset(), 10.0, 14),
        ([float(v) for v in range(1, 21)], frozenset(), 9.6, 14),  # p20 of the last 14 (7..20)
        ([10.0] * 6, frozenset(), None, 6),  # fewer than 7 valid nights
        ([10.0] * 8 + [None] * 3, frozenset(), 10.0, 8),  # invalid nights skipped
        ([10.0] * 7 + [50.0], frozenset({7}), 10.0, 7),  # a flagged night stays out
    ],
)
def test_baseline_is_p20_of_the_previous_valid_nights(values, flagged, baseline, nights) -> None:
    assert d.baseline(past(values, flagged)) == (baseline, nights)


@pytest.mark.parametrize(
    ("tonight", "yesterday_over", "props", "fired"),
    [
        (10.5, False, 0, set()),
        (15.5, False, 0, {"DMA_MNF_STEP", "DMA_MNF_RISE"} - {"DMA_MNF_RISE"}),  # ×1.55
        (14.0, False, 0, set()),  # ×1.4: over 1.2 but one night only
        (14.0, True, 0, {"DMA_MNF_RISE"}),  # second night over
        (12.5, True, 0, {"DMA_MNF_RISE"}),
        (12.5, True, 5000, set()),  # +2.5 m³/h < 0.5 L/h × 5000 properties
        (14.9, False, 100, set()),
    ],
)
def test_step_and_rise(tonight, yesterday_over, props, fired) -> None:
    history = past([10.0] * 14)
    if yesterday_over:
        last = history[-1]
        history[-1] = d.Past(last.night, 14.0, True, 10.0, 40.0, False)
    night = d.Night(tonight, START, 1.0, True)
    base, _, rules = d.evaluate(NIGHT, night, history, 40.0, props)
    assert base == 10.0
    assert {r for r, v in rules.items() if v["fired"]} == fired


def test_high_leakage_is_the_monthly_median_of_mnf_over_adf() -> None:
    history = [
        d.Past(NIGHT - timedelta(days=i), 25.0, True, 25.0, 40.0, False) for i in range(1, 9)
    ]
    _, _, rules = d.evaluate(NIGHT, d.Night(25.0, START, 1.0, True), history, 40.0, 0)
    assert rules["DMA_HIGH_LEAKAGE"]["fired"]  # 25 / 40 > 0.5
    history = [d.Past(p.night, p.mnf, p.valid, p.baseline, 60.0, False) for p in history]
    _, _, rules = d.evaluate(NIGHT, d.Night(25.0, START, 1.0, True), history, 60.0, 0)
    assert not rules["DMA_HIGH_LEAKAGE"]["fired"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("yesterday", "--date: 'yesterday' is not a date"), ("2999-01-01", "has not ended yet")],
)
def test_bad_dates_are_refused_naming_the_option(text, message) -> None:
    with pytest.raises(UsageError, match=message):
        parse_night(text, datetime.now(UTC))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=12))
def test_any_date_text_is_a_past_night_or_a_refusal(text) -> None:
    now = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # 11:00 local
    try:
        night = parse_night(text, now)
    except UsageError as exc:
        assert str(exc).startswith("--date: ")
    else:
        assert night <= date(2026, 12, 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from([*DetectorConfig.model_fields, "unknown_field"]),
        st.one_of(st.integers(-5, 5000), st.floats(allow_nan=False), st.text(max_size=5)),
        max_size=4,
    )
)
def test_detectors_config_is_used_or_refused_naming_the_field(data) -> None:
    try:
        config = parse_config(data)
    except UsageError as exc:
        assert str(exc).startswith("DETECTORS_CONFIG: ")
        assert any(name in str(exc) for name in data)
    else:
        assert len(build_detectors([], config)) == 3
        for name, value in data.items():
            assert getattr(config, name) == pytest.approx(float(value))


# --- the command over simulated nights -----------------------------------------------------


@pytest.fixture
def database_url(storage_database_url: str) -> str:
    """Both storages: the nights are read from watermeter_readings, a hypertable there."""
    return storage_database_url


def events(conn: psycopg.Connection) -> list[tuple[str, str, str]]:
    return conn.execute(
        "SELECT a.rule_id, a.subject, e.event FROM alert_events e JOIN alerts a "
        "ON a.id = e.alert_id ORDER BY e.id"
    ).fetchall()


def test_daily_over_ten_nights_finds_the_burst_night_and_is_idempotent(
    conn, database_url, tmp_path, capsys, monkeypatch
) -> None:
    last = d.last_complete_night(datetime.now(UTC))
    first = last - timedelta(days=9)
    fleet = make_fleet(1, "small")
    registry.import_rows(conn, registry_rows(fleet))
    conn.commit()
    # a burst from 23:00 that lasts the night: the whole 00:00-05:00 window sees it (one that
    # begins at 03:00 leaves the hours before it as that night's minimum)
    eve = last - timedelta(days=1)
    scenario = tmp_path / "burst.yaml"
    scenario.write_text(
        "name: last-night-burst\nbackground_faults: false\nevents:\n"
        f'  - {{type: burst, at: "{eve.isoformat()}T23:00", dma: DMA-01, duration: 8h, '
        "flow_m3_h: 30, pressure_drop_mpa: 0.08}\n"
    )
    start = d.night_window(first)[0] - timedelta(days=1)
    end = d.night_window(last)[1] + timedelta(minutes=15)
    begin, stop = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    world = build_world(fleet, begin, stop, load_scenario(str(scenario)), False)
    meters = [m for m in fleet.devices if m.kind == "watermeter"]
    with psycopg.connect(database_url, autocommit=True) as auto:
        backfill(auto, Simulation(fleet, world, begin, devices=meters), begin, stop, progress=False)
    for i in range(10):
        run_night(conn, first + timedelta(days=i))
        conn.commit()
    rows = conn.execute(
        "SELECT dma_id, night, valid, completeness, baseline_m3_h, mnf_m3_h, rules "
        "FROM dma_night_flow ORDER BY dma_id, night"
    ).fetchall()
    assert len(rows) == 40 and all(r[2] and r[3] == 1.0 for r in rows)
    fired = {(r[0], r[1]) for r in rows if r[6]["DMA_MNF_STEP"]["fired"]}
    assert fired == {("DMA-01", last)}
    burst = next(r for r in rows if (r[0], r[1]) == ("DMA-01", last))
    assert burst[5] - burst[4] > 25  # + ~30 m³/h over the baseline
    assert [r[4] is None for r in rows if r[0] == "DMA-02"] == [True] * 7 + [False] * 3
    assert conn.execute("SELECT rule_id, subject, status FROM alerts ORDER BY id").fetchall() == [
        ("DMA_MNF_STEP", "DMA-01", "open")
    ]
    before = (events(conn), rows)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["alerts", "daily", "--date", last.isoformat()]) == 0
    assert "DMA-01 " + last.isoformat() in capsys.readouterr().out
    assert cli.main(["alerts", "daily", "--date", (last - timedelta(days=3)).isoformat()]) == 0
    after = conn.execute(
        "SELECT dma_id, night, valid, completeness, baseline_m3_h, mnf_m3_h, rules "
        "FROM dma_night_flow ORDER BY dma_id, night"
    ).fetchall()
    assert (events(conn), after) == before  # the same rows, no alert touched
