"""Water ledgers (urbanwatch/ledgers/water.py) through the real import into the database:
Chinese headers and role names, CSV and xlsx, bad rows by line and field with the good rows
kept, idempotent re-import; and a property test over any volumes file."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import ledgers as queries

ACTOR = audit.Actor("user:tester", "operator", "test")
DMAS = get_ledger("water_dmas")
METERS = get_ledger("water_meters")
VOLUMES = get_ledger("water_volumes")
YEARS = get_ledger("water_supply_years")


def _import(conn, spec, data: bytes, fmt: str = "csv"):
    parsed = files.read_xlsx(spec, data) if fmt == "xlsx" else files.read_csv(spec, data)
    return store.import_rows(conn, spec, parsed, ACTOR)


DMAS_CSV = """计量区编号,计量区名称,所属区县,DN75及以上管长(km),接户数
D1,一区,文峰区,12.5,6000
D2,二区,nowhere,3,
D3,三区,滑县,-1,
D4,四区,huaxian,"1,234.5",12.5
D5,五区,林州市,,
"""
METERS_CSV = """水表编号,计量区编号,水表类别,设备编号,计费
M1,D1,进水表,,
M2,D1,户表,WM-X,否
M3,D1,水塔,,
M4,D9,用户,,
M5,D5,pressure,,是
"""


def test_dmas_and_meters_with_chinese_headers_and_names(conn):
    report = _import(conn, DMAS, DMAS_CSV.encode())
    assert report.created == 2
    assert report.errors == [
        (3, "district: unknown district 'nowhere'"),
        (4, "pipe_km_dn75: Input should be greater than or equal to 0"),
        (5, "service_connections: Input should be a valid integer, unable to parse string as "
            "an integer"),
    ]  # fmt: skip
    report = _import(conn, METERS, METERS_CSV.encode())
    assert report.created == 3
    assert [line for line, _ in report.errors] == [4, 5]
    assert report.errors[0][1] == (
        "role: not one of 进水/进水表/出水/出水表/用户/用户表/大用户/小区总表/户表/抄表到户/测压点/压力 "
        "(inlet/outlet/customer/household/pressure): '水塔'"
    )
    assert report.errors[1][1].startswith("dma_id: not found")
    rows = {r["meter_id"]: r for r in queries.iter_rows(conn, METERS)}
    assert rows["M1"]["role"] == "inlet" and rows["M1"]["billed"] is True
    assert rows["M2"] == {"meter_id": "M2", "dma_id": "D1", "role": "household",
                          "device_id": "WM-X", "billed": False}  # fmt: skip
    again = _import(conn, METERS, METERS_CSV.encode())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


def test_supply_years_xlsx_round_trip(conn):
    _import(conn, DMAS, DMAS_CSV.encode())
    text = "所属区县,年度,年平均出厂压力(MPa),最大冻土深度(m)\n文峰区,2023年,0.42,0.3\n滑县,1999,0.3,0.3\n"
    report = _import(conn, YEARS, text.encode())
    assert report.created == 1
    assert report.errors == [(3, "year: Input should be greater than or equal to 2000")]
    rows = list(queries.iter_rows(conn, YEARS))
    data = files.write_xlsx(YEARS, rows)
    conn.execute("DELETE FROM water_supply_years")
    assert _import(conn, YEARS, data, "xlsx").created == 1
    assert list(queries.iter_rows(conn, YEARS)) == rows


# --- property: any volumes file -----------------------------------------------------------

HEADERS = ["计量区编号", "起始日期", "截止日期", "供水量(m³)", "计费用水量(m³)"]
SEEDED = ("D1", "D5")
volumes = st.floats(0, 1e11, allow_nan=False, allow_infinity=False)


@dataclass
class Row:
    cells: list[Any]
    expected: dict[str, Any] | None
    bad_field: str | None = None


@st.composite
def good_row(draw: Any, start: date) -> Row:
    dma = draw(st.sampled_from(SEEDED))
    end = start + timedelta(days=draw(st.integers(0, 400)))
    supply = draw(st.none() | volumes)
    billed = draw(st.none() | volumes)
    style = draw(st.sampled_from(["iso", "zh", "slash"]))
    spell = {"iso": lambda d: d.isoformat(), "zh": lambda d: f"{d.year}年{d.month}月{d.day}日",
             "slash": lambda d: f"{d.year}/{d.month}/{d.day}"}[style]  # fmt: skip
    cells = [dma, spell(start), spell(end), "" if supply is None else repr(supply),
             "" if billed is None else repr(billed)]  # fmt: skip
    expected = {"dma_id": dma, "period_start": start, "period_end": end,
                "supply_m3": supply, "billed_m3": billed}  # fmt: skip
    return Row(cells, expected)


BAD: dict[str, tuple[int, Any]] = {
    "dma_id": (0, st.sampled_from(["D9", "NOPE"])),
    "period_start": (1, st.sampled_from(["2023-02-30", "yesterday", ""])),
    "period_end": (2, st.sampled_from(["1999-01-01", "2023/13/1"])),
    "supply_m3": (3, st.sampled_from(["-1", "abc", "nan", "1e13"])),
    "billed_m3": (4, st.sampled_from(["-0.5", "inf", "十"])),
}


@st.composite
def volumes_file(draw: Any) -> tuple[str, list[Row]]:
    fmt = draw(st.sampled_from(["csv", "xlsx"]))
    starts = draw(st.lists(st.dates(date(2000, 1, 1), date(2090, 1, 1)), max_size=10,
                           unique=True))  # fmt: skip
    rows = []
    for start in starts:
        row = draw(good_row(start))
        if draw(st.booleans()):
            field = draw(st.sampled_from(sorted(BAD)))
            index, cell = BAD[field]
            row.cells[index] = draw(cell)
            row = Row(row.cells, None, field)
        rows.append(row)
    return fmt, rows


def encode(fmt: str, rows: list[Row]) -> bytes:
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADERS)
        writer.writerows(r.cells for r in rows)
        return out.getvalue().encode("utf-8")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADERS)
    for row in rows:
        files.append_literal(sheet, row.cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(volumes_file())
def test_any_volumes_file_reports_bad_rows_by_line_and_field_and_stores_the_good(conn, case):
    fmt, rows = case
    conn.execute("DELETE FROM water_volumes")
    conn.execute("DELETE FROM water_meters")
    conn.execute("DELETE FROM water_dmas")
    for dma in SEEDED:
        queries.insert_row(conn, DMAS, {"dma_id": dma, "district": "wenfeng"})
    report = _import(conn, VOLUMES, encode(fmt, rows), fmt)

    bad = {line: row for line, row in enumerate(rows, start=2) if row.expected is None}
    assert [line for line, _ in report.errors] == sorted(bad)
    for line, reason in report.errors:
        assert reason.startswith(f"{bad[line].bad_field}: "), (line, reason, bad[line].cells)
    good = [row.expected for row in rows if row.expected is not None]
    assert report.created == len(good)
    stored = {(r["dma_id"], r["period_start"], r["period_end"]): r
              for r in queries.iter_rows(conn, VOLUMES)}  # fmt: skip
    assert len(stored) == len(good)
    for expected in good:
        row = stored[(expected["dma_id"], expected["period_start"], expected["period_end"])]
        assert {k: row[k] for k in expected} == expected
    again = _import(conn, VOLUMES, encode(fmt, rows), fmt)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(good))
