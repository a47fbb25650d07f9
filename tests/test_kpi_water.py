"""Water KPIs (urbanwatch/kpi/water.py): CJJ 92-2016 as revised in 2018 against hand-computed
fixtures, docs/domain.md §5.2's worked example, and the ledger-to-KPI path on the real database."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.kpi import water
from urbanwatch.kpi import water_formulas as wf
from urbanwatch.kpi.base import KpiValue, Scope, load_all
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import kpi as q

ACTOR = audit.Actor("user:tester", "operator", "test")


def test_domain_worked_example():
    # Qs 8,000 万m³, Qa 7,000, r 0.40, L 720 km, 0.40 MPa, R4 0 -> R_BL 6.75 % (§5.2).
    b = wf.Balance("x", 8000e4, 7000e4, 7000e4, 0.40 * 8000e4, 720.0, 0.40, 0.3)
    assert wf.loss_rate_wl(b).value == pytest.approx(12.5)
    terms, missing = wf.corrections(b)
    assert missing == []
    assert terms["R1"] == pytest.approx(3.2)
    assert terms["R2"] == pytest.approx(0.99 * (0.09 - 0.0693) * 100)  # 2.0493
    assert (terms["R3"], terms["R4"]) == (0.5, 0.0)
    bl = wf.loss_rate_bl(b, wf.DEFAULTS)
    assert bl.value == pytest.approx(6.7507, abs=1e-4)
    assert round(bl.value, 2) == 6.75
    assert bl.denominator == 8000e4 and bl.numerator == pytest.approx(6.7507e-2 * 8000e4)


@pytest.mark.parametrize(
    ("pipe_km", "supply_m3", "expected"),
    [
        (693.0, 1e8, 0.0),  # A = 0.0693 exactly
        (720.0, 8e7, 2.0493),
        (10_000.0, 1e8, 3.0),  # A = 1: 92.7 % before the clamp
        (0.0, 1e8, -3.0),  # A = 0: −6.86 % before the clamp
        (400.0, 1e8, -2.9007),  # A = 0.04: inside the clamp
        (1000.0, 1e8, 3.0),  # A = 0.1: 3.04 % clamped
    ],
)
def test_r2_and_its_clamp(pipe_km, supply_m3, expected):
    assert wf.r2(pipe_km, supply_m3) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(
    ("mpa", "expected"),
    [(0.0, 0.0), (0.35, 0.0), (0.3501, 0.5), (0.55, 0.5), (0.5501, 1.0), (0.75, 1.0),
     (0.7501, 2.0), (1.2, 2.0)],
)  # fmt: skip
def test_r3_every_band_and_its_edges(mpa, expected):
    assert wf.r3(mpa) == expected


@pytest.mark.parametrize(("depth", "expected"), [(0.0, 0.0), (0.6, 0.0), (1.4, 0.0), (1.41, 1.0)])
def test_r4(depth, expected):
    assert wf.r4(depth) == expected


def test_r1_is_eight_percent_of_the_household_share():
    assert wf.r1(2500.0, 10_000.0) == pytest.approx(2.0)


def test_missing_corrections_count_zero_and_are_named_or_give_no_data_when_configured():
    b = wf.Balance("x", 10_000.0, 9_000.0, 8_500.0, None, None, None, None)
    v = wf.loss_rate_bl(b, wf.DEFAULTS)
    assert v.value == pytest.approx(10.0)
    assert "no input for R1, R2, R3, R4" in v.note
    strict = wf.loss_rate_bl(b, {"missing_correction": "no_data"})
    assert strict.value is None and not strict.has_data


def test_zero_supply_is_no_data_never_zero_or_a_crash():
    b = wf.Balance("x", 0.0, 0.0, 0.0, 0.0, 10.0, 0.3, 0.3)
    for v in (wf.loss_rate_wl(b), wf.loss_rate_bl(b, wf.DEFAULTS), wf.nrw_rate(b)):
        assert v.value is None
    assert wf.supply_weighted([]).value is None
    assert wf.pressure_pass_rate(0, 0, wf.PRESSURE_DEFAULTS).value is None


def test_supply_weighted_roll_up_and_units_without_data_are_excluded():
    units = [
        ("a", KpiValue(10.0, 10.0, 100.0)),
        ("b", KpiValue(5.0, 15.0, 300.0)),
        ("c", KpiValue(None, None, 0.0)),
    ]
    v = wf.supply_weighted(units)
    assert v.value == pytest.approx((10 * 100 + 5 * 300) / 400)  # 6.25, not the mean 7.5
    assert v.exclusions == ("c (no data)",)


def test_nrw_counts_free_use_as_non_revenue():
    b = wf.Balance("x", 1000.0, 900.0, 850.0)
    assert wf.nrw_rate(b).value == pytest.approx(15.0)
    assert wf.loss_rate_wl(b).value == pytest.approx(10.0)


def test_ili_by_hand():
    # UARL = (18·100 + 0.8·20000 + 25·50)·40 = (1800 + 16000 + 1250)·40 = 762,000 L/day
    v = wf.ili(1_524_000.0, 100.0, 20_000, 50.0, 40.0)
    assert v.denominator == pytest.approx(762_000.0) and v.value == pytest.approx(2.0)
    assert wf.ili(1.0, None, 20_000, 50.0, 40.0).value is None


@pytest.mark.parametrize(
    ("as_of", "rolling", "first"),
    [(date(2023, 6, 30), False, date(2023, 1, 1)), (date(2023, 6, 30), True, date(2022, 7, 1)),
     (date(2024, 2, 29), True, date(2023, 3, 1)), (date(2023, 12, 31), True, date(2023, 1, 1))],
)  # fmt: skip
def test_periods(as_of, rolling, first):
    assert water.period(as_of, rolling) == (first, as_of)


def _import(conn, name: str, text: str):
    spec = get_ledger(name)
    return store.import_rows(conn, spec, files.read_csv(spec, text.encode()), ACTOR)


DMAS_CSV = """计量区编号,计量区名称,所属区县,DN75及以上管长(km)
D1,一区,文峰区,9
D2,二区,北关区,40
D3,三区,林州市,10
"""
VOLUMES_CSV = """计量区编号,起始日期,截止日期,供水量(m³),计费用水量(m³),免费用水量(m³),抄表到户水量(m³)
D1,2023-01-01,2023-06-30,500000,400000,10000,250000
D1,2023-07-01,2023-12-31,500000,420000,10000,250000
D2,2023-01-01,2023-12-31,2000000,1800000,0,0
D3,2023-01-01,2023-12-31,1000000,850000,,
D3,2022-01-01,2022-12-31,999,1,,
"""
YEARS_CSV = """所属区县,年度,年平均出厂压力(MPa),最大冻土深度(m)
文峰区,2023,0.40,0.3
北关区,2022,0.60,0.3
林州市,2023,0.30,1.5
"""


def test_imported_volumes_through_the_ledgers_to_r_bl_per_district_and_class(conn):
    for name, text in (("water_dmas", DMAS_CSV), ("water_volumes", VOLUMES_CSV),
                       ("water_supply_years", YEARS_CSV)):  # fmt: skip
        assert _import(conn, name, text).errors == []
    kpis = load_all()
    bl = kpis["water.loss_rate_R_BL"]
    as_of = date(2023, 12, 31)
    # wenfeng (D1): Qs 1e6 (100 万m³), Qa 840,000 -> R_WL 16 %; r 0.5 -> R1 4 %;
    # A = 9/100 -> R2 2.0493 %; 0.40 MPa -> R3 0.5 %; R4 0 -> R_BL 9.4507 %.
    wenfeng = bl.compute(conn, as_of, Scope("wenfeng", ("wenfeng",)), wf.DEFAULTS)
    assert wenfeng.value == pytest.approx(16 - 4 - 2.0493 - 0.5, abs=1e-3)
    assert "supply from imported" in wenfeng.note
    # beiguan (D2): Qs 200 万m³, R_WL 10 %, R1 0, A = 0.2 -> R2 clamp 3 %, the 2022 year's
    # 0.60 MPa -> R3 1 % -> R_BL 6 %.
    beiguan = bl.compute(conn, as_of, Scope("beiguan", ("beiguan",)), wf.DEFAULTS)
    assert beiguan.value == pytest.approx(6.0)
    # linzhou (D3): R_WL 15 %, no household volume (R1 0), A = 0.1 -> R2 3 % (clamped),
    # 0.30 MPa -> 0, frost 1.5 m -> R4 1 % -> 11 %; the 2022 row is outside the year.
    linzhou = bl.compute(conn, as_of, Scope("linzhou", ("linzhou",)), wf.DEFAULTS)
    assert linzhou.value == pytest.approx(11.0)
    central = bl.compute(conn, as_of, Scope("central", ("wenfeng", "beiguan")), wf.DEFAULTS)
    expected = (wenfeng.value * 1e6 + 6.0 * 2e6) / 3e6
    assert central.value == pytest.approx(expected)
    county = bl.compute(conn, as_of, Scope("county", ("linzhou", "huaxian")), wf.DEFAULTS)
    assert county.value == pytest.approx(11.0)
    city = bl.compute(conn, as_of, Scope("city", None), wf.DEFAULTS)
    assert city.value == pytest.approx((wenfeng.value * 1e6 + 6.0 * 2e6 + 11.0 * 1e6) / 4e6)
    wl = kpis["water.loss_rate_R_WL"].compute(conn, as_of, Scope("city", None), {})
    assert wl.value == pytest.approx((160_000 + 200_000 + 150_000) / 4e6 * 100)
    nrw = kpis["water.nrw_rate"].compute(conn, as_of, Scope("city", None), {})
    assert nrw.value == pytest.approx((180_000 + 200_000 + 150_000) / 4e6 * 100)
    items = bl.items(conn, as_of, Scope("city", None), wf.DEFAULTS)
    assert [i["dma_id"] for i in items] == ["D3", "D1", "D2"]  # worst first
    # half a year: D1's first half only, so the rolling and annual figures differ.
    mid = bl.compute(conn, date(2023, 6, 30), Scope("wenfeng", ("wenfeng",)), wf.DEFAULTS)
    assert mid.denominator == 500_000


def test_no_dmas_is_no_data(conn):
    for key in ("water.loss_rate_R_BL", "water.loss_rate_R_WL_rolling12", "water.nrw_rate",
                "water.pressure_pass_rate", "water.ili"):  # fmt: skip
        spec = load_all()[key]
        v = spec.compute(conn, date(2023, 12, 31), Scope("city", None), dict(spec.defaults))
        assert v.value is None, key


def test_daily_snapshot_stores_the_water_kpis_for_every_scope(conn):
    from urbanwatch.kpi import snapshot

    for name, text in (("water_dmas", DMAS_CSV), ("water_volumes", VOLUMES_CSV),
                       ("water_supply_years", YEARS_CSV)):  # fmt: skip
        _import(conn, name, text)
    keys = [k for k in load_all() if k.startswith("water.")]
    written = snapshot.snapshot_day(conn, date(2023, 12, 31), kpis=keys)
    scopes = conn.execute("SELECT count(*) FROM districts").fetchone()[0] + 3
    assert written == len(keys) * scopes
    row = conn.execute(
        "SELECT value, denominator, note FROM kpi_daily WHERE kpi = 'water.loss_rate_R_BL'"
        " AND scope = 'linzhou' AND day = '2023-12-31'"
    ).fetchone()
    assert row[0] == pytest.approx(11.0) and row[1] == 1_000_000 and "R4 1.00 %" in row[2]
    empty = conn.execute(
        "SELECT value FROM kpi_daily WHERE kpi = 'water.loss_rate_R_BL' AND scope = 'huaxian'"
    ).fetchone()
    assert empty == (None,)  # no DMA there: no data, not 0 %


def test_daily_snapshot_stores_r_bl_per_dma_and_a_rerun_replaces_it(conn):
    """kpi_daily_dma (migration 021): the city value's per-DMA items, as the API lists them;
    recomputing the day rewrites them rather than adding rows."""
    from urbanwatch.kpi import snapshot

    for name, text in (("water_dmas", DMAS_CSV), ("water_volumes", VOLUMES_CSV),
                       ("water_supply_years", YEARS_CSV)):  # fmt: skip
        _import(conn, name, text)
    day = date(2023, 12, 31)
    bl = load_all()["water.loss_rate_R_BL"]
    assert bl.items is not None
    items = {i["dma_id"]: i for i in bl.items(conn, day, Scope("city", None), wf.DEFAULTS)}
    for _ in range(2):
        snapshot.snapshot_day(conn, day, kpis=["water.loss_rate_R_BL", "water.nrw_rate"])
        rows = conn.execute(
            "SELECT dma_id, district, value, supply_m3 FROM kpi_daily_dma "
            "WHERE kpi = 'water.loss_rate_R_BL' AND day = %s ORDER BY dma_id",
            (day,),
        ).fetchall()
        assert [r[0] for r in rows] == ["D1", "D2", "D3"]
        for dma_id, district, value, supply in rows:
            assert district == items[dma_id]["district"]
            assert value == pytest.approx(items[dma_id]["R_BL"])
            assert supply == pytest.approx(items[dma_id]["supply_m3"])
    by_dma = {r[0]: r[2] for r in rows}
    assert by_dma["D2"] == pytest.approx(6.0) and by_dma["D3"] == pytest.approx(11.0)
    # only R_BL's list is stored
    assert conn.execute("SELECT DISTINCT kpi FROM kpi_daily_dma").fetchall() == [
        ("water.loss_rate_R_BL",)
    ]


DMA_ROW = st.tuples(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1),
    st.sampled_from(["wenfeng", "beiguan", "linzhou", None]),
    st.none() | st.floats(allow_nan=False, allow_infinity=False),
    st.none() | st.floats(min_value=0, max_value=1e12),
    st.none() | st.floats(min_value=0, max_value=1e12),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    writes=st.lists(st.lists(DMA_ROW, max_size=5, unique_by=lambda r: r[0]), min_size=1, max_size=3)
)
def test_per_dma_rows_of_a_day_are_what_the_last_run_wrote(conn, writes):
    """Whatever ids, values and notes a run writes, the day holds exactly the last run's."""
    day = date(2024, 3, 1)
    for rows in writes:
        with conn.transaction():
            q.replace_dma_daily(conn, day, "water.loss_rate_R_BL", rows)
    stored = conn.execute(
        "SELECT dma_id, district, value, supply_m3, authorised_m3, note FROM kpi_daily_dma "
        "WHERE kpi = 'water.loss_rate_R_BL' AND day = %s",
        (day,),
    ).fetchall()
    assert sorted(stored) == sorted(writes[-1])
