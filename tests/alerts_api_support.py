"""A world for the alert API tests: the shipped routing loaded, a few devices, keys of each
role (crews of two units), and alerts written by the engine's own write path
(urbanwatch.queries.alerts.apply_change)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.app import create_app
from tests.identity_support import api_settings, make_key
from urbanwatch.identity.roles import Role
from urbanwatch.queries import notify
from urbanwatch.queries.alerts import Change, apply_change
from urbanwatch.routing.load import default_text, parse_route_file

DEVICES = [
    ("MH-1", "manhole", "wenfeng", {"segment": "SEG-1"}),
    ("MH-2", "manhole", "linzhou", {}),
    ("SL-1", "streetlight", "wenfeng", {"circuit_id": "C-1", "segment": "SEG-2"}),
    ("SL-2", "streetlight", "wenfeng", {"circuit_id": "C-1", "segment": "SEG-2"}),
    ("WM-1", "watermeter", "beiguan", {"dma_id": "DMA-01"}),
]


@dataclass
class World:
    client: TestClient
    url: str
    keys: dict[str, dict[str, str]]  # viewer, crew (市城市管理局), water_crew, operator, admin


def load_default_routes(url: str) -> None:
    with psycopg.connect(url) as conn:
        notify.replace_routes(conn, parse_route_file(default_text()), "test", "0" * 64)


def add_devices(url: str) -> None:
    with psycopg.connect(url) as conn:
        for device_id, kind, district, attrs in DEVICES:
            conn.execute(
                "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) "
                "VALUES (%s, %s, %s, 36.1, 114.35, %s)",
                (device_id, kind, district, Jsonb(attrs)),
            )


def open_alert(
    url: str,
    rule_id: str = "MH_TILT",
    subject: str = "MH-1",
    kind: str = "manhole",
    district: str | None = "wenfeng",
    severity: str = "alarm",
    at: datetime | None = None,
    device: bool = True,
    children: tuple[tuple[str, str], ...] = (),
) -> int:
    """An alert opened as the engine opens one; returns its id."""
    at = at or datetime.now(UTC)
    change = Change(
        action="open",
        rule_id=rule_id,
        subject=subject,
        kind=kind,
        severity=severity,
        title="测试告警 Test alert",
        at=at,
        started=at,
        device_id=subject if device else None,
        district=district,
        detail={"value": 1},
        children=children,
    )
    with psycopg.connect(url) as conn:
        alert_id = apply_change(conn, change, reopen_within_s=3600)
    assert alert_id is not None
    return alert_id


def row(url: str, query: str, *params: Any) -> Any:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def make_world(url: str) -> Iterator[World]:
    load_default_routes(url)
    add_devices(url)
    keys = {
        "viewer": make_key(url, Role.viewer),
        "crew": make_key(url, Role.crew, unit="市城市管理局"),
        "water_crew": make_key(url, Role.crew, unit="安阳水务集团公司"),
        "operator": make_key(url, Role.operator),
        "admin": make_key(url, Role.admin),
    }
    headers = {name: {"X-API-Key": key} for name, key in keys.items()}
    with TestClient(create_app(api_settings(url))) as client:
        yield World(client, url, headers)
