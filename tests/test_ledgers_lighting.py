"""Property: any lighting facilities file (CSV or xlsx), through the real import into the
database: every bad row is reported by line and field, every good row is stored as meant
(Chinese type and side names resolved), the re-import changes nothing."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import ledgers as queries

ACTOR = audit.Actor("user:property", "operator", "test")
SEGMENTS = get_ledger("lighting_segments")
FACILITIES = get_ledger("lighting_facilities")
HEADERS = ["设施编号", "设施类型", "所属区县", "路段编号", "道路侧", "光源类型", "额定功率(W)",
           "半夜灯关闭起", "半夜灯关闭止", "病害发现日期", "病害修复日期"]  # fmt: skip
TYPES = {"灯具": "lamp", "lamp": "lamp", "灯杆": "pole", "配电箱": "cabinet", "回路": "circuit"}
SIDES = {"左": "L", "右": "R", "l": "L", "": None}
LAMPS = {"LED": "LED", "hps": "HPS", "其他": "other", "MH": "MH"}
key_text = st.text(
    st.characters(
        exclude_categories=("Cs", "Cc", "Zl", "Zp"), exclude_characters="\x85\ufffe\uffff"
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip())


@dataclass
class Row:
    cells: list[Any]
    expected: dict[str, Any] | None
    bad_field: str | None = None


@st.composite
def good_row(draw: Any, key: str) -> Row:
    type_cell = draw(st.sampled_from(sorted(TYPES)))
    kind = TYPES[type_cell]
    side = draw(st.sampled_from(sorted(SIDES)))
    segment = draw(st.sampled_from(["", "S1"]))
    lamp_cell = draw(st.sampled_from(sorted(LAMPS))) if kind == "lamp" else ""
    power = draw(st.floats(0.5, 2000, allow_nan=False)) if kind == "lamp" else None
    night = draw(st.booleans())
    off_from, off_to = (time(23, 0), time(5, 30)) if night else (None, None)
    found = draw(st.none() | st.dates(date(2000, 1, 1), date(2090, 1, 1)))
    repaired = (
        found + timedelta(days=draw(st.integers(0, 99))) if found and draw(st.booleans()) else None
    )
    cells = [key, type_cell, "文峰区", segment, side, lamp_cell, "" if power is None else repr(power),
             "23:00" if night else "", "5:30" if night else "",
             found.isoformat() if found else "", f"{repaired.year}年{repaired.month}月{repaired.day}日" if repaired else ""]  # fmt: skip
    expected = {"facility_id": key.strip(), "facility_type": kind, "district": "wenfeng",
                "segment_id": segment or None, "road_side": SIDES[side],
                "lamp_type": LAMPS.get(lamp_cell), "rated_power_w": power,
                "part_night_off_from": off_from, "part_night_off_to": off_to,
                "defect_found_on": found, "defect_repaired_on": repaired}  # fmt: skip
    return Row(cells, expected)


BAD: dict[str, tuple[int, Any]] = {
    "facility_type": (1, st.sampled_from(["streetlamp", "景观灯", ""])),
    "district": (2, st.sampled_from(["nowhere", "文峰"])),
    "segment_id": (3, st.sampled_from(["S9", "NO-SUCH"])),
    "road_side": (4, st.sampled_from(["上", "X"])),
    "part_night_off_from": (7, st.sampled_from(["25:00", "late", "23:61"])),
    "defect_found_on": (9, st.sampled_from(["2023-02-30", "soon"])),
}


@st.composite
def facilities_file(draw: Any) -> tuple[str, list[Row]]:
    fmt = draw(st.sampled_from(["csv", "xlsx"]))
    keys = draw(st.lists(key_text, max_size=10, unique_by=lambda s: s.strip()))
    rows = []
    for key in keys:
        row = draw(good_row(key))
        if draw(st.booleans()):
            field = draw(st.sampled_from(sorted(BAD)))
            index, cell = BAD[field]
            row.cells[index] = draw(cell)
            if field == "part_night_off_from":
                row.cells[8] = "05:00"
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


def _import(conn, data: bytes, fmt: str):
    parsed = (
        files.read_xlsx(FACILITIES, data) if fmt == "xlsx" else files.read_csv(FACILITIES, data)
    )
    return store.import_rows(conn, FACILITIES, parsed, ACTOR)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(facilities_file())
def test_any_facilities_file_reports_bad_rows_by_line_and_field_and_stores_the_good(conn, case):
    fmt, rows = case
    conn.execute("DELETE FROM lighting_facilities")
    conn.execute("DELETE FROM lighting_road_segments")
    queries.insert_row(conn, SEGMENTS, {"segment_id": "S1", "district": "wenfeng",
                                        "road_name": "人民大道", "road_class": "trunk", "length_m": 100.0})  # fmt: skip
    report = _import(conn, encode(fmt, rows), fmt)

    bad = {line: row for line, row in enumerate(rows, start=2) if row.expected is None}
    assert [line for line, _ in report.errors] == sorted(bad)
    for line, reason in report.errors:
        assert reason.startswith(f"{bad[line].bad_field}: "), (line, reason, bad[line].cells)
    good = [row.expected for row in rows if row.expected is not None]
    assert report.created == len(good)
    stored = {r["facility_id"]: r for r in queries.iter_rows(conn, FACILITIES)}
    assert len(stored) == len(good)
    for expected in good:
        row = stored[expected["facility_id"]]
        assert {k: row[k] for k in expected} == expected
        assert row["is_landscape"] is False
    again = _import(conn, encode(fmt, rows), fmt)
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(good))
