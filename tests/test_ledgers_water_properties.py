"""Property: any file for the other lighting and water ledgers (road segments, DMAs, meters,
supply years), CSV or xlsx, through the real import into the database. Nothing is lost (every
row is stored or reported), every report names its line and a field of the ledger, every
stored row holds exactly what the row said once validated, and a re-import changes nothing."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from urbanwatch import audit
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import LedgerSpec, get_ledger
from urbanwatch.queries import ledgers as queries

ACTOR = audit.Actor("user:property", "operator", "test")
garbage = st.sampled_from(["", "abc", "-1", "nan", "1e400", "是", "2023-02-30", "\x1b", "十"])
ids = st.text("ABCD-1测", min_size=1, max_size=4)
# Any printable text but line breaks (a bare CR in a CSV cell ends the record: line numbers
# are what this test checks); control characters come from `garbage`.
names = st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=8)
districts = st.sampled_from(["wenfeng", "文峰区", "滑县", "nowhere"])
numbers = st.floats(-10, 1e5, allow_nan=False).map(repr) | st.integers(-5, 5000).map(str)
dates = st.dates().map(lambda d: f"{d.year}年{d.month}月{d.day}日") | st.dates().map(str)
CELLS: dict[str, dict[str, Any]] = {
    "lighting_segments": {
        "路段编号": ids, "所属区县": districts, "道路名称": names,
        "道路等级": st.sampled_from(["主干路", "branch", "Trunk", "胡同"]), "路段长度(米)": numbers,
        "相邻下一路段": ids, "通车日期": dates, "停用日期": dates, "实测平均照度(lx)": numbers,
    },
    "water_dmas": {
        "计量区编号": ids, "所属区县": districts, "DN75及以上管长(km)": numbers,
        "干管长度(km)": numbers, "接户数": numbers, "平均运行压力(m)": numbers,
    },
    "water_meters": {
        "水表编号": ids, "计量区编号": st.sampled_from(["D1", "D2", "D9"]),
        "水表类别": st.sampled_from(["进水表", "户表", "customer", "水塔"]), "设备编号": ids,
        "计费": st.sampled_from(["是", "否", "", "maybe"]),
    },
    "water_supply_years": {
        "所属区县": districts, "年度": st.integers(1990, 2110).map(str) | st.just("2023年"),
        "年平均出厂压力(MPa)": numbers, "最大冻土深度(m)": numbers,
    },
}  # fmt: skip


@st.composite
def ledger_file(draw: Any) -> tuple[str, str, list[str], list[list[Any]]]:
    name = draw(st.sampled_from(sorted(CELLS)))
    fmt = draw(st.sampled_from(["csv", "xlsx"]))
    columns = CELLS[name]
    headers = list(columns)
    rows = draw(st.lists(st.tuples(*(columns[h] | garbage for h in headers)), max_size=8))
    rows = [list(r) for r in rows if any(str(c).strip() for c in r)]  # blank rows are skipped
    if fmt == "xlsx":  # an .xlsx cell cannot hold a control character
        rows = [r for r in rows if not any(ILLEGAL_CHARACTERS_RE.search(str(c)) for c in r)]
    return name, fmt, headers, rows


def encode(fmt: str, headers: list[str], rows: list[list[Any]]) -> bytes:
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(headers)
    for row in rows:
        files.append_literal(sheet, row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _read(spec: LedgerSpec, fmt: str, data: bytes) -> files.ParsedFile:
    return files.read_xlsx(spec, data) if fmt == "xlsx" else files.read_csv(spec, data)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger_file())
def test_any_file_loses_nothing_names_line_and_field_and_stores_what_it_said(conn, case):
    name, fmt, headers, rows = case
    spec = get_ledger(name)
    for table in ("water_supply_years", "water_meters", "water_dmas", "lighting_road_segments"):
        conn.execute(f"DELETE FROM {table}")
    for dma in ("D1", "D2"):
        queries.insert_row(conn, get_ledger("water_dmas"), {"dma_id": dma, "district": "wenfeng"})
    before = {store.key_of(spec, r) for r in queries.iter_rows(conn, spec)}

    parsed = _read(spec, fmt, encode(fmt, headers, rows))
    assert len(parsed.rows) == len(rows)
    report = store.import_rows(conn, spec, parsed, ACTOR)

    assert report.created + len(report.errors) == len(rows)  # nothing lost
    lines = {line for line, _ in parsed.rows}
    for line, reason in report.errors:
        assert line in lines
        assert reason.split(":")[0].split(", ")[0] in spec.names, reason
    stored = {store.key_of(spec, r): r for r in queries.iter_rows(conn, spec)}
    assert len(stored) == len(before) + report.created
    bad = {line for line, _ in report.errors}
    districts = queries.district_names(conn)
    for line, raw in parsed.rows:
        if line in bad:
            continue
        row = store.prepare(spec, raw, districts)
        assert {k: stored[store.key_of(spec, row)][k] for k in row} == row

    again = store.import_rows(conn, spec, _read(spec, fmt, encode(fmt, headers, rows)), ACTOR)
    assert again.created == again.updated == 0 and again.unchanged == report.created
    assert {store.key_of(spec, r) for r in queries.iter_rows(conn, spec)} == set(stored)
