"""Property: any ledger file, through the real import into the database. Every bad row is
reported with its line and the field at fault, every good row is stored as written (text
trimmed), and nothing else changes: rows already there stay, and the audit log gains one
entry per created row plus the import's own."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

import openpyxl
import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import ledgers as queries

COVERS = get_ledger("manhole_covers")
ACTOR = audit.Actor("user:property", "operator", "test")
SEED = [
    {"cover_id": "SEED-1", "district": "wenfeng", "road": "人民大道", "in_core_area": True},
    {"cover_id": "SEED-2", "district": "huaxian", "road": None, "in_core_area": False},
]
DISTRICTS = {"wenfeng": "wenfeng", "文峰区": "wenfeng", "滑县": "huaxian", "linzhou": "linzhou"}
HEADERS = ["井盖编号", "district", "所在道路", "核心区域", "安装日期", "纬度", "material"]
FIELDS = ["cover_id", "district", "road", "in_core_area", "installed_on", "lat", "material"]

# Cells a clerk might type: any printable unicode (CJK, emoji, RTL, combining marks), no
# control characters (refused: see bad cells) and no line breaks (line numbers are checked).
text = st.text(
    st.characters(
        exclude_categories=("Cs", "Cc"), exclude_characters="\u2028\u2029\x85\ufffe\uffff"
    ),
    max_size=40,
)
key_text = text.filter(lambda s: s.strip() and s.strip() not in {"SEED-1", "SEED-2"})
dates = st.dates(date(1000, 1, 1), date(2200, 12, 31))


@st.composite
def date_cell(draw: Any) -> tuple[Any, date | None]:
    d = draw(st.none() | dates)
    if d is None:
        return "", None
    # Excel's own dates start in 1900: earlier ones are typed as text.
    styles = ["iso", "slash", "zh", "dot"] + (["native"] if d.year > 1900 else [])
    style = draw(st.sampled_from(styles))
    cell = {
        "iso": d.isoformat(),
        "slash": f"{d.year}/{d.month}/{d.day}",
        "zh": f"{d.year}年{d.month}月{d.day}日",
        "dot": f"{d.year}.{d.month:02d}.{d.day:02d}",
        "native": d,
    }[style]
    return cell, d


@dataclass
class Row:
    cells: list[Any]
    expected: dict[str, Any] | None  # None: bad row
    bad_field: str | None = None


@st.composite
def good_row(draw: Any, key: str) -> Row:
    district = draw(st.sampled_from(sorted(DISTRICTS)))
    road = draw(text)
    flag_cell, flag = draw(
        st.sampled_from([("是", True), ("否", False), ("true", True), ("0", False), ("", False)])
    )
    date_text, installed = draw(date_cell())
    lat = draw(st.none() | st.floats(-90, 90, allow_nan=False))
    material = draw(text)
    cells = [key, district, road, flag_cell, date_text, "" if lat is None else repr(lat), material]
    expected = {
        "cover_id": key.strip(),
        "district": DISTRICTS[district],
        "road": road.strip() or None,
        "in_core_area": flag,
        "installed_on": installed,
        "lat": lat,
        "material": material.strip() or None,
    }
    return Row(cells, expected)


BAD_CELLS = {
    "district": st.sampled_from(["nowhere", "文峰", "WENFENG "]),
    "in_core_area": st.sampled_from(["maybe", "2", "是的"]),
    "installed_on": st.sampled_from(["2021-02-30", "yesterday", "2021年13月1日", "21-1-1"]),
    "lat": st.sampled_from(["91", "-90.5", "abc", "nan", "inf", "1e400"]),
    "road": st.sampled_from(["x" * 2001, "bad\x00cell", "esc\x1bape", "non\uffffchar"]),
    "material": st.just("数" * 3000),
}


@st.composite
def bad_row(draw: Any, key: str) -> Row:
    row = draw(good_row(key))
    field = draw(st.sampled_from(sorted(BAD_CELLS)))
    row.cells[FIELDS.index(field)] = draw(BAD_CELLS[field])
    return Row(row.cells, None, field)


@st.composite
def ledger_file(draw: Any) -> tuple[str, list[Row]]:
    fmt = draw(st.sampled_from(["csv", "xlsx"]))
    keys = draw(st.lists(key_text, max_size=12, unique_by=lambda s: s.strip()))
    rows = [draw(st.one_of(good_row(k), bad_row(k))) for k in keys]
    if fmt == "xlsx":  # an .xlsx cell cannot hold control characters at all
        illegal = ("\x00", "\x1b", "\uffff")
        rows = [r for r in rows if not any(x in str(c) for c in r.cells for x in illegal)]
    return fmt, rows


def encode(fmt: str, rows: list[Row]) -> bytes:
    if fmt == "csv":
        out = io.StringIO(newline="")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADERS)
        for row in rows:
            writer.writerow([c.isoformat() if isinstance(c, date) else c for c in row.cells])
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


def _snapshot(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    return {r["cover_id"]: r for r in queries.iter_rows(conn, COVERS)}


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ledger_file())
def test_any_file_reports_bad_rows_by_line_and_field_and_stores_the_good(conn, case):
    fmt, rows = case
    conn.execute("DELETE FROM manhole_covers")
    for seed in SEED:
        queries.insert_row(conn, COVERS, seed)
    before = _snapshot(conn)
    audit_before = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]

    parsed = (
        files.read_xlsx(COVERS, encode(fmt, rows))
        if fmt == "xlsx"
        else files.read_csv(COVERS, encode(fmt, rows))
    )
    report = store.import_rows(conn, COVERS, parsed, ACTOR)

    bad = {line: row for line, row in enumerate(rows, start=2) if row.expected is None}
    assert [line for line, _ in report.errors] == sorted(bad)
    for line, reason in report.errors:
        assert reason.startswith(f"{bad[line].bad_field}: "), (line, reason, bad[line].cells)
    good = [row.expected for row in rows if row.expected is not None]
    assert report.created == len(good) and report.updated == report.unchanged == 0

    after = _snapshot(conn)
    assert {k: after[k] for k in before} == before  # rows already there are untouched
    assert len(after) == len(before) + len(good)
    for expected in good:
        stored = after[expected["cover_id"]]
        assert {k: stored[k] for k in expected} == expected
        assert stored["anti_fall_required"] is False and stored["smart_monitor_id"] is None
    audit_after = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    assert audit_after == audit_before + len(good) + 1

    again = store.import_rows(conn, COVERS, parsed, ACTOR)  # re-import: idempotent
    assert (again.created, again.updated, again.unchanged) == (0, 0, len(good))
    assert _snapshot(conn) == after
