"""Ledger import and export (urbanwatch/ledgers/) on the real database: CSV and xlsx, Chinese
headers, bad rows by line and field with the good rows kept, idempotent re-import, audit."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import openpyxl
import psycopg
import pytest

from urbanwatch import audit, cli
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import all_ledgers, get_ledger
from urbanwatch.queries import audit as audit_queries
from urbanwatch.queries import ledgers as queries

ACTOR = audit.Actor("user:tester", "operator", "test")
COVERS = get_ledger("manhole_covers")
DEFECTS = get_ledger("manhole_defects")
POINTS = get_ledger("waterlog_points")
HAZARDS = get_ledger("hidden_dangers")

COVERS_CSV = """\ufeff井盖编号,所属区县,所在道路,井盖用途,核心区域,应装防坠设施,防坠设施安装日期,纬度,经度
MH-0001,文峰区,人民大道,雨水,是,是,2021/5/3,36.09,114.39
MH-0002,nowhere,中华路,污水,否,否,,36.1,114.4
MH-0003,beiguan,"文明大道
北段",污水,maybe,否,,36.1,114.4
MH-0004,北关区,文明大道,污水,否,是,2021年13月1日,36.1,114.4
MH-0005,殷都区,,合流,否,是,2022.1.9,95,114.4
,殷都区,,合流,否,是,,,
MH-0006,龙安区,,雨水,1,true,,,
"""


def import_bytes(conn: psycopg.Connection, spec, data: bytes, fmt: str = "csv"):
    parsed = files.read_csv(spec, data) if fmt == "csv" else files.read_xlsx(spec, data)
    return store.import_rows(conn, spec, parsed, ACTOR)


def test_csv_with_chinese_headers_keeps_good_rows_and_names_each_bad_one(conn):
    report = import_bytes(conn, COVERS, COVERS_CSV.encode())
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    assert report.errors == [
        (3, "district: unknown district 'nowhere'"),
        (4, "in_core_area: not yes/no: 'maybe' (use 是/否, true/false or 1/0)"),
        (
            6,
            "anti_fall_installed_on: not a calendar date: '2021年13月1日' (month must be in 1..12)",
        ),
        (7, "lat: Input should be less than or equal to 90"),
        (8, "cover_id: required, but empty"),
    ]
    rows = {r["cover_id"]: r for r in queries.iter_rows(conn, COVERS)}
    assert set(rows) == {"MH-0001", "MH-0006"}
    assert rows["MH-0001"]["district"] == "wenfeng"
    assert rows["MH-0001"]["anti_fall_installed_on"] == date(2021, 5, 3)
    assert rows["MH-0001"]["in_core_area"] is True and rows["MH-0006"]["anti_fall_required"]
    assert rows["MH-0006"]["road"] is None


def test_reimport_changes_nothing_and_an_edit_is_audited_with_the_previous_value(conn):
    import_bytes(conn, COVERS, COVERS_CSV.encode())
    _, before = audit_queries.list_entries(conn, resource="ledger:manhole_covers")
    again = import_bytes(conn, COVERS, COVERS_CSV.encode())
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    entries, after = audit_queries.list_entries(conn, resource="ledger:manhole_covers")
    assert after == before + 1 and entries[0].action == "import"  # only the import summary

    edited = COVERS_CSV.replace("MH-0001,文峰区,人民大道", "MH-0001,文峰区,光明路")
    report = import_bytes(conn, COVERS, edited.encode())
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    change = next(
        e
        for e in audit_queries.list_entries(conn, resource="ledger:manhole_covers")[0]
        if e.action == "update"
    )
    assert change.resource_id == "MH-0001" and change.actor == "user:tester"
    assert change.before == {"road": "人民大道"} and change.after == {"road": "光明路"}
    assert change.at is not None


def test_a_column_the_file_lacks_keeps_its_stored_value(conn):
    import_bytes(conn, COVERS, COVERS_CSV.encode())
    report = import_bytes(
        conn, COVERS, "井盖编号,所属区县,材质\nMH-0001,文峰区,球墨铸铁\n".encode()
    )
    assert report.updated == 1
    row = queries.get_row(conn, COVERS, {"cover_id": "MH-0001"})
    assert row is not None and row["road"] == "人民大道" and row["material"] == "球墨铸铁"


def test_xlsx_export_and_reimport_round_trip_and_csv_export_matches(conn, tmp_path: Path):
    import_bytes(conn, COVERS, COVERS_CSV.encode())
    rows = list(queries.iter_rows(conn, COVERS))
    data = files.write_xlsx(COVERS, rows)
    book = openpyxl.load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["窨井盖台账", "说明 notes"]
    assert [c.value for c in book.worksheets[0][1]][:2] == ["井盖编号", "所属区县"]
    report = import_bytes(conn, COVERS, data, "xlsx")
    assert (report.unchanged, report.errors) == (2, [])
    csv_report = import_bytes(conn, COVERS, files.write_csv(COVERS, rows))
    assert (csv_report.unchanged, csv_report.errors) == (2, [])


def test_xlsx_native_cells_dates_numbers_and_booleans(conn):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["cover_id", "district", "in_core_area", "installed_on", "lat", "lon"])
    sheet.append([1001, "wenfeng", True, date(2020, 6, 1), 36, 114.5])
    sheet.append(["MH-X", "wenfeng", "否", "yesterday", 36, 114.5])
    out = io.BytesIO()
    book.save(out)
    report = import_bytes(conn, COVERS, out.getvalue(), "xlsx")
    assert report.created == 1
    assert report.errors == [
        (3, "installed_on: not a date: 'yesterday' (use 2021-05-03 or 2021年5月3日)")
    ]
    row = queries.get_row(conn, COVERS, {"cover_id": "1001"})
    assert row is not None and row["installed_on"] == date(2020, 6, 1) and row["lat"] == 36.0


def test_every_template_has_each_column_and_imports_as_nothing(conn):
    for spec in all_ledgers().values():
        for fmt, data in (("csv", files.write_csv(spec, [])), ("xlsx", files.write_xlsx(spec, []))):
            report = import_bytes(conn, spec, data, fmt)
            assert (report.stored, report.errors, report.warnings) == (0, [], [])
        header = files.write_csv(spec, []).decode("utf-8-sig").splitlines()[0].split(",")
        assert header == [c.label_zh for c in spec.columns]


def test_missing_required_column_refuses_the_file():
    with pytest.raises(
        ValueError, match=r"header lacks required column\(s\): 所属区县 \(district\)"
    ):
        files.read_csv(COVERS, "井盖编号,road\nMH-1,x\n".encode())


def test_unknown_column_is_reported_and_ignored(conn):
    report = import_bytes(conn, COVERS, "cover_id,district,颜色\nMH-1,wenfeng,red\n".encode())
    assert report.created == 1
    assert report.warnings == ["column '颜色' is not a manhole_covers field; ignored"]


def test_gb18030_csv_as_saved_by_chinese_excel(conn):
    report = import_bytes(conn, COVERS, "井盖编号,所属区县\nMH-1,文峰区\n".encode("gb18030"))
    assert report.created == 1 and report.errors == []


def test_defects_need_a_known_cover_and_dates_in_order(conn):
    import_bytes(conn, COVERS, COVERS_CSV.encode())
    text = (
        "井盖编号,病害类型,发现日期,发现来源,整治日期,验收日期,2021年普查\n"
        "MH-0001,破损,2021-03-01,巡查,2021-06-01,2021-06-10,是\n"
        "MH-9999,MISSING,2021-03-01,inspection,,,否\n"
        "MH-0001,LOOSE,2021-03-01,inspection,2021-02-01,,否\n"
        "MH-0006,SUNK,2021-03-01,inspection,,,否\n"
        "MH-0001,破损,2021-03-01,巡查,2021-06-01,2021-06-10,是\n"
    )
    report = import_bytes(conn, DEFECTS, text.encode())
    assert report.created == 1
    assert [line for line, _ in report.errors] == [3, 4, 5, 6]
    assert report.errors[0][1].startswith("cover_id: not found")
    assert report.errors[1][1] == "remediated_on: before discovered_on"
    assert report.errors[2][1].startswith("defect_type: Input should be 'MISSING'")
    assert (
        report.errors[3][1]
        == "cover_id, defect_type, discovered_on: 'MH-0001/BROKEN/2021-03-01' repeats line 2"
    )
    stored = list(queries.iter_rows(conn, DEFECTS))
    assert [(r["defect_type"], r["source"], r["baseline_2021"]) for r in stored] == [
        ("BROKEN", "inspection", True)
    ]


def test_a_frozen_baseline_keeps_its_rows_and_flags(conn):
    import_bytes(conn, COVERS, COVERS_CSV.encode())
    header = "cover_id,defect_type,discovered_on,source,baseline_2021\n"
    import_bytes(conn, DEFECTS, (header + "MH-0001,BROKEN,2021-03-01,inspection,是\n").encode())
    assert queries.freeze_baseline(conn, "manhole_defects", ACTOR.name)
    assert not queries.freeze_baseline(conn, "manhole_defects", ACTOR.name)
    text = (
        header + "MH-0001,BROKEN,2021-03-01,inspection,否\n"  # leaving the baseline
        "MH-0006,LOOSE,2021-04-01,inspection,是\n"  # joining it
        "MH-0006,MISSING,2022-04-01,complaint,否\n"  # a later defect: fine
    )
    report = import_bytes(conn, DEFECTS, text.encode())
    assert report.created == 1
    assert [line for line, _ in report.errors] == [2, 3]
    assert all(
        r.startswith("baseline_2021: the 2021 baseline of manhole_defects is frozen")
        for _, r in report.errors
    )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("DELETE FROM manhole_defects WHERE baseline_2021")


def test_waterlog_points_and_hidden_dangers(conn):
    points = (
        "积水点编号,积水点名称,所属区县,计划整治年份,完工验收日期,2021年台账\n"
        "WL-01,人民公园,文峰区,2021,2021-09-30,是\n"
        "WL-02,同乐花园,北关区,2021.5,,是\n"
    )
    report = import_bytes(conn, POINTS, points.encode())
    assert report.created == 1
    assert report.errors[0][0] == 3 and report.errors[0][1].startswith("planned_year:")
    row = queries.get_row(conn, POINTS, {"point_id": "WL-01"})
    assert row is not None and row["planned_year"] == 2021 and row["name"] == "人民公园"
    hazards = (
        "隐患编号,所属区县,隐患类别,发现日期,整改时限,整改完成日期,验收日期\n"
        "HD-1,林州市,燃气,2022-01-05,2022-03-01,2022-02-20,2022-02-25\n"
        "HD-2,滑县,窨井,2022-01-05,2021-12-01,,\n"
        "HD-3,滑县,窨井,2022-01-05,,,2022-02-25\n"
    )
    report = import_bytes(conn, HAZARDS, hazards.encode())
    assert report.created == 1
    assert report.errors == [
        (3, "deadline: before found_on"),
        (4, "verified_on: set, but rectified_on is empty"),
    ]


def test_cli_template_import_export(database_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    template = tmp_path / "covers.xlsx"
    assert cli.main(["ledgers", "template", "manhole_covers", str(template)]) == 0
    source = tmp_path / "covers.csv"
    source.write_text(COVERS_CSV, encoding="utf-8")
    assert cli.main(["ledgers", "import", "manhole_covers", str(source), "-q"]) == 1
    out, err = capsys.readouterr()
    assert "2 created, 0 updated, 0 unchanged; 5 bad row(s) skipped" in out
    assert f"{source}:line 3: district: unknown district 'nowhere'" in err
    exported = tmp_path / "out.xlsx"
    assert cli.main(["ledgers", "export", "manhole_covers", str(exported)]) == 0
    assert cli.main(["ledgers", "import", "manhole_covers", str(exported), "-q"]) == 0
    assert "0 created, 0 updated, 2 unchanged" in capsys.readouterr().out
    assert cli.main(["ledgers", "import", "nope", str(exported)]) == 2
    assert "no ledger 'nope'" in capsys.readouterr().err
    assert cli.main(["ledgers", "import", "manhole_covers", str(tmp_path / "x.txt")]) == 2
    assert cli.main(["ledgers", "freeze", "manhole_defects"]) == 0
    assert "frozen" in capsys.readouterr().out


def test_docs_describe_every_ledger_column():
    text = (Path(__file__).resolve().parents[1] / "docs" / "ledgers.md").read_text("utf-8")
    for spec in (COVERS, DEFECTS, POINTS, HAZARDS):  # lighting and water: their own sections
        assert f"### `{spec.name}`" in text
        for col in spec.columns:
            assert f"| {col.label_zh} | `{col.name}` |" in text, (spec.name, col.name)
