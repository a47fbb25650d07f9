"""What the KPI formulas read (urbanwatch/kpi/), and `kpi_daily`, where their values stay.

Each gatherer returns the rows of one scope (`districts` None = the whole city) as small
frozen dataclasses (built per row: a pydantic model here cost seconds at city scale); the
formulas count them. Ledger dates are local calendar dates. Inside `facts_cache(conn)` (a
snapshot or a report: many KPIs × scopes) each ledger is read once for the whole city and
each scope filtered from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, is_dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import class_row, tuple_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict


def in_scope(column: str = "district") -> str:
    return f"(%(districts)s::text[] IS NULL OR {column} = ANY(%(districts)s))"


IN_SCOPE = in_scope()


class Row(BaseModel):
    model_config = ConfigDict(frozen=True)


@dataclass(frozen=True, slots=True)
class Fact:
    def as_json(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, date | datetime) else v)
            for k, v in asdict(self).items()
        }


@dataclass(frozen=True, slots=True)
class DefectFact(Fact):
    cover_id: str
    district: str
    defect_type: str
    status: str
    discovered_on: date
    remediated_on: date | None
    verified_on: date | None
    baseline_2021: bool


@dataclass(frozen=True, slots=True)
class CoverFact(Fact):
    cover_id: str
    district: str
    installed_on: date | None
    in_core_area: bool
    anti_fall_required: bool
    anti_fall_installed_on: date | None
    smart_monitor_id: str | None


@dataclass(frozen=True, slots=True)
class MonitorFact(Fact):
    device_id: str
    district: str
    installed_at: date | None
    heartbeat_s: int | None
    last_seen: datetime | None


@dataclass(frozen=True, slots=True)
class PointFact(Fact):
    point_id: str
    name: str
    district: str
    accepted_on: date | None
    verification: str
    verified_on: date | None
    baseline_2021: bool
    sensor_id: str | None


@dataclass(frozen=True, slots=True)
class HazardFact(Fact):
    hazard_id: str
    district: str
    category: str
    found_on: date
    deadline: date | None
    rectified_on: date | None
    verified_on: date | None


@dataclass(frozen=True, slots=True)
class DepthReading(Fact):
    district: str
    device_id: str
    ts: datetime
    depth_cm: float


def _rows(
    conn: psycopg.Connection, model: type[Any], query: str, params: dict[str, Any]
) -> list[Any]:
    if is_dataclass(model):
        return fact_rows(conn, model, query, params)
    with conn.cursor(row_factory=class_row(model)) as cur:
        return cur.execute(query, params).fetchall()


def fact_rows(
    conn: psycopg.Connection, model: type[Any], query: str, params: dict[str, Any]
) -> list[Any]:
    """The rows of `query` as `model` dataclasses built from plain tuples (positionally:
    half the time of `class_row`'s keyword calls on the city's 40,000 lamps). The query's
    columns must be the dataclass's first fields in order: checked on every call."""
    with conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, params)
        names = [c.name for c in cur.description or ()]
        wanted = [f.name for f in fields(model)][: len(names)]
        if names != wanted:
            raise RuntimeError(f"{model.__name__}: columns {names} are not its fields {wanted}")
        return [model(*row) for row in cur]


F = TypeVar("F", bound=Fact)
_CACHES: WeakKeyDictionary[psycopg.Connection, dict[Any, list[Any]]] = WeakKeyDictionary()


@contextmanager
def facts_cache(conn: psycopg.Connection) -> Iterator[None]:
    """Read each ledger once for the city while inside; scopes are filtered from it."""
    _CACHES[conn] = {}
    try:
        yield
    finally:
        _CACHES.pop(conn, None)


def _scoped(
    conn: psycopg.Connection,
    key: Any,
    districts: Sequence[str] | None,
    fetch: Callable[[Sequence[str] | None], list[F]],
) -> list[F]:
    cache = _CACHES.get(conn)
    if cache is None:
        return fetch(districts)
    if key not in cache:
        cache[key] = fetch(None)
    rows: list[F] = cache[key]
    if districts is None:
        return rows
    wanted = set(districts)
    return [r for r in rows if r.district in wanted]  # type: ignore[attr-defined]


def _scope(districts: Sequence[str] | None) -> dict[str, Any]:
    return {"districts": list(districts) if districts is not None else None}


# The ledgers the KPIs count, one query each over a district scope.
DEFECTS = (
    "SELECT d.cover_id, c.district, d.defect_type, d.status, d.discovered_on, "
    "d.remediated_on, d.verified_on, d.baseline_2021 "
    "FROM manhole_defects d JOIN manhole_covers c USING (cover_id) "
    f"WHERE {in_scope('c.district')} ORDER BY 1, 3, 5"
)
COVERS = (
    "SELECT cover_id, district, installed_on, in_core_area, anti_fall_required, "
    f"anti_fall_installed_on, smart_monitor_id FROM manhole_covers WHERE {IN_SCOPE} "
    "ORDER BY cover_id"
)
POINTS = (
    "SELECT point_id, name, district, accepted_on, verification, verified_on, "
    f"baseline_2021, sensor_id FROM waterlog_points WHERE {IN_SCOPE} ORDER BY point_id"
)
HAZARDS = (
    "SELECT hazard_id, district, category, found_on, deadline, rectified_on, verified_on "
    f"FROM hidden_dangers WHERE {IN_SCOPE} ORDER BY hazard_id"
)


def _ledger(
    conn: psycopg.Connection, fact: type[F], query: str, districts: Sequence[str] | None
) -> list[F]:
    fetch = lambda d: _rows(conn, fact, query, _scope(d))  # noqa: E731
    return _scoped(conn, query, districts, fetch)


def defects(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[DefectFact]:
    return _ledger(conn, DefectFact, DEFECTS, districts)


def covers(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[CoverFact]:
    return _ledger(conn, CoverFact, COVERS, districts)


def points(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[PointFact]:
    return _ledger(conn, PointFact, POINTS, districts)


def hazards(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[HazardFact]:
    return _ledger(conn, HazardFact, HAZARDS, districts)


# The last message of each installed smart-cover monitor at `until`: a reading or a status.
MONITORS = f"""
SELECT d.device_id, d.district, d.installed_at,
       (d.attrs ->> 'heartbeat_s')::int AS heartbeat_s,
       GREATEST(
           (SELECT max(r.ts) FROM manhole_readings r
             WHERE r.device_id = d.device_id AND r.ts <= %(until)s),
           (SELECT max(s.ts) FROM device_status s
             WHERE s.device_id = d.device_id AND s.ts <= %(until)s)) AS last_seen
FROM devices d
WHERE d.kind = 'manhole' AND d.status IN ('installed', 'active', 'maintenance')
  AND {in_scope("d.district")}
ORDER BY d.device_id"""


def monitors(
    conn: psycopg.Connection, districts: Sequence[str] | None, until: datetime
) -> list[MonitorFact]:
    fetch = lambda d: _rows(conn, MonitorFact, MONITORS, _scope(d) | {"until": until})  # noqa: E731
    return _scoped(conn, ("monitors", until), districts, fetch)


# Depth readings of the sensors that reached `level_cm` in the window: only those can have
# had an event, and their other readings are needed to see each event close.
DEPTHS = f"""
SELECT d.district, r.device_id, r.ts, r.depth_cm
FROM waterlog_readings r JOIN devices d USING (device_id)
WHERE r.ts >= %(since)s AND r.ts < %(until)s AND r.depth_cm IS NOT NULL
  AND r.device_id IN (
      SELECT w.device_id FROM waterlog_readings w JOIN devices d USING (device_id)
      WHERE w.ts >= %(since)s AND w.ts < %(until)s AND w.depth_cm >= %(level_cm)s
        AND {in_scope("d.district")})
ORDER BY r.device_id, r.ts"""


def depth_readings(
    conn: psycopg.Connection,
    districts: Sequence[str] | None,
    since: datetime,
    until: datetime,
    level_cm: float,
) -> list[DepthReading]:
    def fetch(d: Sequence[str] | None) -> list[DepthReading]:
        params = _scope(d) | {"since": since, "until": until, "level_cm": level_cm}
        return _rows(conn, DepthReading, DEPTHS, params)

    return _scoped(conn, ("depths", since, until, level_cm), districts, fetch)


def district_classes(conn: psycopg.Connection) -> dict[str, str]:
    """district code -> 'central' | 'county'."""
    return {code: cls for code, cls in conn.execute("SELECT code, district_class FROM districts")}


# --- kpi_daily ---------------------------------------------------------------------------

UPSERT_DAILY = """
INSERT INTO kpi_daily (day, kpi, scope, value, numerator, denominator, exclusions, defaults,
                       note, computed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (kpi, scope, day) DO UPDATE SET
    value = EXCLUDED.value, numerator = EXCLUDED.numerator,
    denominator = EXCLUDED.denominator, exclusions = EXCLUDED.exclusions,
    defaults = EXCLUDED.defaults, note = EXCLUDED.note, computed_at = now()"""


# --- kpi_daily_dma (migration 021): R_BL per DMA behind the city's daily value ------------

REPLACE_DMA_DAY = "DELETE FROM kpi_daily_dma WHERE kpi = %s AND day = %s"
INSERT_DMA_DAILY = """
INSERT INTO kpi_daily_dma (day, kpi, dma_id, district, value, supply_m3, authorised_m3, note)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"""


def replace_dma_daily(
    conn: psycopg.Connection, day: date, kpi: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """A day's per-DMA rows of one KPI, replacing what an earlier run stored (a DMA gone
    from the registry is gone from the day). Rows of (dma_id, district, value, supply_m3,
    authorised_m3, note)."""
    with conn.cursor() as cur:
        cur.execute(REPLACE_DMA_DAY, (kpi, day))
        cur.executemany(INSERT_DMA_DAILY, [(day, kpi, *r) for r in rows])


class DailyValue(Row):
    day: date
    kpi: str
    scope: str
    value: float | None
    numerator: float | None
    denominator: float | None
    exclusions: list[Any]
    defaults: dict[str, Any]
    note: str
    computed_at: datetime


def upsert_daily(conn: psycopg.Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Rows of (day, kpi, scope, value, numerator, denominator, exclusions, defaults, note)."""
    with conn.cursor() as cur:
        cur.executemany(
            UPSERT_DAILY,
            [(*r[:6], Jsonb(list(r[6])), Jsonb(dict(r[7])), r[8]) for r in rows],
        )


def daily_series(
    conn: psycopg.Connection, kpi: str, scope: str, since: date, until: date
) -> list[DailyValue]:
    return _rows(
        conn,
        DailyValue,
        "SELECT day, kpi, scope, value, numerator, denominator, exclusions, defaults, note, "
        "computed_at FROM kpi_daily WHERE kpi = %(kpi)s AND scope = %(scope)s "
        "AND day BETWEEN %(since)s AND %(until)s ORDER BY day",
        {"kpi": kpi, "scope": scope, "since": since, "until": until},
    )


def daily_points(
    conn: psycopg.Connection, kpi: str, scope: str, since: date, until: date
) -> list[tuple[date, float | None]]:
    """(day, value) of the stored series: what a trend needs, without parsing each row's
    exclusions and defaults (the report's and the API's history per target)."""
    return conn.execute(
        "SELECT day, value FROM kpi_daily WHERE kpi = %(kpi)s AND scope = %(scope)s "
        "AND day BETWEEN %(since)s AND %(until)s ORDER BY day",
        {"kpi": kpi, "scope": scope, "since": since, "until": until},
    ).fetchall()


def daily_on(conn: psycopg.Connection, day: date, kpi: str | None = None) -> list[DailyValue]:
    return _rows(
        conn,
        DailyValue,
        "SELECT day, kpi, scope, value, numerator, denominator, exclusions, defaults, note, "
        "computed_at FROM kpi_daily WHERE day = %(day)s "
        "AND (%(kpi)s::text IS NULL OR kpi = %(kpi)s) ORDER BY kpi, scope",
        {"day": day, "kpi": kpi},
    )
