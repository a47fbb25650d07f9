"""Device registry import from CSV and GeoJSON: good rows land, bad rows are named."""

from __future__ import annotations

import json
from datetime import date

from urbanwatch.cli import main
from urbanwatch.registry import import_file

CSV = """device_id,kind,district,lat,lon,status,installed_at,road,lamp_type,rated_power_w,safety_net,dma_id,meter_role
sl-001,streetlight,wenfeng,36.10,114.35,active,2022-05-01,文明大道,LED,120,,,
sl-002,streetlight,文峰区,36.11,114.36,,,文明大道,HPS,250,,,
mh-001,manhole,huaxian,35.58,114.52,installed,,,,,true,,
bad id!,manhole,wenfeng,36.1,114.3,,,,,,,,
mh-002,lamp,wenfeng,36.1,114.3,,,,,,,,
mh-003,manhole,atlantis,36.1,114.3,,,,,,,,
mh-004,manhole,wenfeng,96.1,114.3,,,,,,,,
sl-003,streetlight,beiguan,36.1,114.3,,,,LED,-5,,,
mh-005,manhole,beiguan,36.1,114.3,,not-a-date,,,,,,
wm-001,watermeter,linzhou,36.06,113.82,,,,,,,DMA-LZ-01,inlet
wm-002,watermeter,linzhou,36.06,113.82,,,,,,,DMA-LZ-01,valve
"""


def test_csv_imports_good_rows_and_names_bad_ones(conn, tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_text(CSV, encoding="utf-8")
    report = import_file(conn, path)
    assert report.imported == 4
    assert report.errors == [
        ("line 5", "device_id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$'"),
        ("line 6", "kind: Input should be 'manhole', 'waterlog', 'streetlight' or 'watermeter'"),
        ("line 7", "district: unknown district 'atlantis'"),
        ("line 8", "lat: Input should be less than or equal to 90"),
        ("line 9", "rated_power_w: Input should be greater than 0"),
        (
            "line 10",
            "installed_at: Input should be a valid date or datetime, invalid character in year",
        ),
        ("line 12", "meter_role: Input should be 'inlet', 'outlet', 'customer' or 'pressure'"),
    ]
    rows = conn.execute(
        "SELECT device_id, kind, district, status, installed_at, attrs FROM devices "
        "ORDER BY device_id"
    ).fetchall()
    assert rows == [
        ("mh-001", "manhole", "huaxian", "installed", None, {"safety_net": True}),
        (
            "sl-001",
            "streetlight",
            "wenfeng",
            "active",
            date(2022, 5, 1),
            {"road": "文明大道", "lamp_type": "LED", "rated_power_w": 120.0},
        ),
        (
            "sl-002",
            "streetlight",
            "wenfeng",
            "active",
            None,
            {"road": "文明大道", "lamp_type": "HPS", "rated_power_w": 250.0},
        ),
        (
            "wm-001",
            "watermeter",
            "linzhou",
            "active",
            None,
            {"dma_id": "DMA-LZ-01", "meter_role": "inlet"},
        ),
    ]


def test_reimport_updates_in_place(conn, tmp_path):
    path = tmp_path / "a.csv"
    path.write_text(
        "device_id,kind,district,lat,lon,lamp_type\nsl-1,streetlight,yindu,36.1,114.3,HPS\n"
    )
    import_file(conn, path)
    path.write_text(
        "device_id,kind,district,lat,lon,lamp_type\nsl-1,streetlight,yindu,36.2,114.3,LED\n"
    )
    assert import_file(conn, path).imported == 1
    assert conn.execute(
        "SELECT lat, attrs->>'lamp_type', updated_at > created_at FROM devices"
    ).fetchall() == [(36.2, "LED", True)]


def test_geojson_points(conn, tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [114.39, 36.09]},
                "properties": {
                    "device_id": "wl-renmin",
                    "kind": "waterlog",
                    "district": "beiguan",
                    "point_name": "人民公园",
                    "remediation_status": "remediated",
                },
            },
            {
                "type": "Feature",
                "geometry": {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
                "properties": {"device_id": "wl-x", "kind": "waterlog", "district": "beiguan"},
            },
            {
                "type": "Feature",
                "id": "wl-tongle",
                "geometry": {"type": "Point", "coordinates": [114.33, 36.07]},
                "properties": {"kind": "waterlog", "district": "wenfeng", "point_name": "同乐花园"},
            },
        ],
    }
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = import_file(conn, path)
    assert (report.imported, report.errors) == (
        2,
        [("feature 2", "geometry: must be a Point with [lon, lat]")],
    )
    assert conn.execute(
        "SELECT device_id, lat, lon, attrs->>'point_name' FROM devices ORDER BY 1"
    ).fetchall() == [
        ("wl-renmin", 36.09, 114.39, "人民公园"),
        ("wl-tongle", 36.07, 114.33, "同乐花园"),
    ]


def test_cli_import_reports_lines_and_exit_status(database_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "f.csv"
    path.write_text(
        "device_id,kind,district,lat,lon\nok-1,manhole,wenfeng,36.1,114.3\n"
        "ok-2,manhole,wenfeng,36.1,999\n"
    )
    assert main(["devices", "import", "--quiet", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "imported 1 device(s); 1 bad row(s) skipped" in out
    assert f"{path}:line 3: lon: Input should be less than or equal to 180" in err


def test_cli_rejects_a_csv_without_required_columns(database_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "f.csv"
    path.write_text("id,kind\n1,manhole\n")
    assert main(["devices", "import", str(path)]) == 2
    assert "lacks required column(s): device_id, district, lat, lon" in capsys.readouterr().err


def test_a_broken_service_plugin_does_not_disable_the_cli(monkeypatch, capsys):
    from importlib.metadata import EntryPoint

    from urbanwatch import cli

    broken = EntryPoint(name="broken", value="no_such_module:register", group="urbanwatch.commands")
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    args = cli.build_parser().parse_args(["migrate", "--storage", "plain"])
    assert args.func is cli.cmd_migrate
    assert "the 'broken' command is unavailable" in capsys.readouterr().err
