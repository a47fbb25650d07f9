"""Districts: the central city and the county-level cities (docs/domain.md §1)."""

from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from urbanwatch.models import DistrictPublic

LIST_DISTRICTS = "SELECT code, name_zh, name_en, district_class FROM districts ORDER BY code"


def list_districts(conn: psycopg.Connection) -> list[DistrictPublic]:
    with conn.cursor(row_factory=class_row(DistrictPublic)) as cur:
        return cur.execute(LIST_DISTRICTS).fetchall()
