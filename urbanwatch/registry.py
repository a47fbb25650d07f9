"""Device registry import: CSV or GeoJSON in, upserted devices and a per-row error list out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from pydantic import ValidationError
from tqdm import tqdm

from urbanwatch.models import DeviceCreate, describe_errors

# Columns every CSV must have; any other non-empty column becomes a device attribute.
REQUIRED_COLUMNS = ("device_id", "kind", "district", "lat", "lon")
TOP_LEVEL = (
    "device_id",
    "kind",
    "district",
    "lat",
    "lon",
    "status",
    "installed_at",
    "commissioned_at",
    "gateway_id",
)
# Rows go to the database in chunks: big enough for COPY to pay, small enough for a live bar.
CHUNK_ROWS = 5000


@dataclass
class ImportReport:
    imported: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (where, reason)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_district_names(conn: psycopg.Connection) -> dict[str, str]:
    """Map both codes and Chinese names to district codes (`文峰区` and `wenfeng` both work)."""
    names: dict[str, str] = {}
    for code, name_zh in conn.execute("SELECT code, name_zh FROM districts"):
        names[code] = code
        names[name_zh] = code
    return names


def read_csv(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"CSV header lacks required column(s): {', '.join(missing)}")
    for row in reader:
        yield f"line {reader.line_num}", {k: v for k, v in row.items() if k and v not in ("", None)}


def read_geojson(text: str) -> Iterator[tuple[str, dict[str, Any]]]:
    doc = json.loads(text)
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ValueError("GeoJSON must be a FeatureCollection with a 'features' list")
    for i, feature in enumerate(features, start=1):
        where = f"feature {i}"
        geometry = (feature or {}).get("geometry") or {}
        props = dict((feature or {}).get("properties") or {})
        coords = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coords, list) or len(coords) < 2:
            yield where, {**props, "_error": "geometry: must be a Point with [lon, lat]"}
            continue
        props.setdefault("device_id", feature.get("id"))
        yield where, {**props, "lon": coords[0], "lat": coords[1]}


def to_device(raw: dict[str, Any], districts: dict[str, str]) -> DeviceCreate:
    """Validate one row; raises ValueError with a reason naming the field."""
    if "_error" in raw:
        raise ValueError(raw["_error"])
    district = raw.get("district")
    if district is not None and str(district) not in districts:
        raise ValueError(f"district: unknown district {district!r}")
    body = {k: raw[k] for k in TOP_LEVEL if k in raw}
    if district is not None:
        body["district"] = districts[str(district)]
    body["attrs"] = {k: v for k, v in raw.items() if k not in TOP_LEVEL}
    try:
        return DeviceCreate.model_validate(body)
    except ValidationError as exc:
        raise ValueError(describe_errors(exc)) from None


UPSERT_SQL = """
INSERT INTO devices AS d (device_id, kind, district, lat, lon, status, installed_at,
                          commissioned_at, gateway_id, attrs)
SELECT device_id, kind, district, lat, lon, status, installed_at, commissioned_at, gateway_id,
       attrs
FROM devices_import
ON CONFLICT (device_id) DO UPDATE SET
    kind = EXCLUDED.kind, district = EXCLUDED.district, lat = EXCLUDED.lat, lon = EXCLUDED.lon,
    status = EXCLUDED.status, installed_at = EXCLUDED.installed_at,
    commissioned_at = EXCLUDED.commissioned_at, gateway_id = EXCLUDED.gateway_id,
    attrs = EXCLUDED.attrs, updated_at = now()
"""
# A gateway exists once a device names it.
NEW_GATEWAYS_SQL = """INSERT INTO gateways (gateway_id)
SELECT DISTINCT gateway_id FROM devices_import WHERE gateway_id IS NOT NULL
ON CONFLICT DO NOTHING"""


def upsert_devices(conn: psycopg.Connection, devices: list[DeviceCreate]) -> int:
    """Insert or update devices by id in one statement (COPY to a temp table, then upsert)."""
    if not devices:
        return 0
    latest = {d.device_id: d for d in devices}  # a file may list an id twice: last one wins
    with conn.cursor() as cur:
        cur.execute(
            """CREATE TEMP TABLE IF NOT EXISTS devices_import
               (LIKE devices INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"""
        )
        with cur.copy(
            """COPY devices_import (device_id, kind, district, lat, lon, status, installed_at,
                                    commissioned_at, gateway_id, attrs) FROM STDIN"""
        ) as copy:
            for d in latest.values():
                copy.write_row(
                    (
                        d.device_id,
                        d.kind.value,
                        d.district,
                        d.lat,
                        d.lon,
                        d.status.value,
                        d.installed_at,
                        d.commissioned_at,
                        d.gateway_id,
                        json.dumps(d.attrs, ensure_ascii=False),
                    )
                )
        cur.execute(NEW_GATEWAYS_SQL)
        cur.execute(UPSERT_SQL)
        return cur.rowcount


def import_rows(
    conn: psycopg.Connection,
    rows: Iterable[tuple[str, dict[str, Any]]],
    *,
    total: int | None = None,
    progress: bool = False,
) -> ImportReport:
    report = ImportReport()
    districts = load_district_names(conn)
    chunk: list[DeviceCreate] = []
    with tqdm(total=total, unit="row", disable=not progress, desc="import") as bar:
        for where, raw in rows:
            try:
                chunk.append(to_device(raw, districts))
            except ValueError as exc:
                report.errors.append((where, str(exc)))
            bar.update(1)
            if len(chunk) >= CHUNK_ROWS:
                with conn.transaction():
                    report.imported += upsert_devices(conn, chunk)
                chunk = []
        with conn.transaction():
            report.imported += upsert_devices(conn, chunk)
    return report


def import_file(conn: psycopg.Connection, path: Path, *, progress: bool = False) -> ImportReport:
    """Import a CSV (`.csv`) or GeoJSON (`.geojson`/`.json`) registry file; good rows land
    even when others are bad, and every bad row is reported with its line and reason."""
    text = path.read_text("utf-8-sig")
    if path.suffix.lower() in (".geojson", ".json"):
        rows = list(read_geojson(text))
    else:
        rows = list(read_csv(text))
    return import_rows(conn, rows, total=len(rows), progress=progress)
