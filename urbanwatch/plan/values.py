"""A cache of computed KPI values for the API's plan endpoints (GET /targets, /targets/{id},
/feed, /kpis/{key}): issue #11 wants them within 200 ms and the lighting KPIs alone take
longer than that to compute from the readings.

A value is stored with the *input key* read just before computing it:

* the counter of each input family the KPI reads (`KpiSpec.inputs`, the tables of each in
  `FAMILIES`) in `plan_input_versions` (migrations 028 and 034), bumped by the commit of any
  transaction that changed a table of that family, or a field of an alert a KPI could read;
* the database's name (a process that serves one database never sees another key, but
  tests do);
* for a KPI that reads readings or device status (`KpiSpec.reads_readings`), also the
  current minute of the database clock.

A value is reused only while its own families' counters read the same: a hazard edit is
seen by the very next request for the hazard KPIs and leaves the lighting values cached;
readings (not counted by the triggers: they arrive every second) are seen within the
minute. So a value computed from readings may be up to 60 s old; the responses say when
their values were computed (`computed_at`). A value computed from ledgers and alerts alone
is kept until one of its families changes.

Races: the counters are read before computing and read again after; a value is stored only
when its families' counters read the same both times (for a readings KPI, the minute too).
The counters are bumped inside the committing transaction, so a change that commits while
a value is computed changes the second read and the value is returned but not kept. (Under
READ COMMITTED each statement of a computation sees what was committed when it started; if
its families' counters did not move between the two reads, every statement saw the same
rows of the tables it reads.)

The cache lives in the process and holds at most `MAX_VALUES` values; when full, the values
whose counters have moved on are dropped first.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import psycopg

from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope

MAX_VALUES = 20_000
# The counted input families and their tables (migration 034 bumps the family's counter on
# every committed change of these tables). A table no family lists is read only by KPIs
# marked reads_readings (readings, device status, daily runs): the minute bounds those.
FAMILIES: dict[str, tuple[str, ...]] = {
    "registry": ("devices", "districts"),
    "manhole": ("manhole_covers", "manhole_defects"),
    "waterlog": ("waterlog_points",),
    "lighting": ("lighting_road_segments", "lighting_facilities"),
    "water": ("water_dmas", "water_meters", "water_supply_years", "water_volumes"),
    "hazards": ("hidden_dangers",),
    "alerts": ("alerts",),
}
ALL_FAMILIES = frozenset(FAMILIES)
KEY_SQL = """SELECT current_database(), coalesce(jsonb_object_agg(area, version), '{}'),
       date_trunc('minute', clock_timestamp()), clock_timestamp()
FROM plan_input_versions"""

Counters = dict[str, int]
# (database, ((family, counter), ...) of a value's families)
Versions = tuple[str, tuple[tuple[str, int], ...]]
ValueKey = tuple[str, date, str, tuple[str, ...] | None, str]
# (the value, when it was computed, the minute it holds for: None = until the counters
# move, the counters of its families when it was computed)
Entry = tuple[KpiValue, datetime, datetime | None, Versions]


def read_key(conn: psycopg.Connection) -> tuple[tuple[str, Counters], datetime, datetime]:
    """((the database, every family's counter), the current minute, the database clock)."""
    row = conn.execute(KEY_SQL).fetchone()
    assert row is not None
    return (row[0], {k: int(v) for k, v in row[1].items()}), row[2], row[3]


def inputs_of(spec: KpiSpec) -> tuple[str, ...]:
    return tuple(sorted(spec.inputs if spec.inputs is not None else ALL_FAMILIES))


def versions_of(key: tuple[str, Counters], families: tuple[str, ...]) -> Versions:
    # A family without a counter row (a database not migrated to 034) reads -1: never equal
    # to a counted one, and the same on both reads of one request.
    return key[0], tuple((f, key[1].get(f, -1)) for f in families)


def _newer_or_same(a: Versions, b: Versions) -> bool:
    """Are counters `a` at least as new as `b`? Another database's (a test's) replaces any."""
    if a[0] != b[0] or len(a[1]) != len(b[1]):
        return True
    return all(x[1] >= y[1] for x, y in zip(a[1], b[1], strict=True))


@dataclass
class ValueCache:
    """Values with the counters of their families (see the module docstring)."""

    max_values: int = MAX_VALUES
    values: dict[ValueKey, Entry] = field(default_factory=dict)
    latest: dict[tuple[str, str], int] = field(default_factory=dict)  # newest seen counters
    hits: int = 0
    misses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lookup(self, versions: Versions, minute: datetime, vkey: ValueKey) -> Entry | None:
        with self._lock:
            found = self.values.get(vkey)
            if found is not None and (
                found[3] != versions or (found[2] is not None and found[2] != minute)
            ):
                found = None  # its families moved on, or a readings value of an earlier minute
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def store(self, key: tuple[str, Counters], computed: Mapping[ValueKey, Entry]) -> None:
        with self._lock:
            for family, version in key[1].items():
                seen = self.latest.get((key[0], family), -1)
                self.latest[(key[0], family)] = max(seen, version)
            for vkey, entry in computed.items():
                old = self.values.get(vkey)
                if old is not None and not _newer_or_same(entry[3], old[3]):
                    continue  # an older request finishing late: its value is not current
                if old is None and len(self.values) >= self.max_values:
                    self._drop_stale()
                    if len(self.values) >= self.max_values:
                        break
                self.values[vkey] = entry

    def _drop_stale(self) -> None:
        """Drop the values whose families' counters have moved on (they can never be read
        again). Called with the lock held."""
        stale = [
            vkey
            for vkey, (_, _, _, (db, counters)) in self.values.items()
            if any(self.latest.get((db, f), -1) > v for f, v in counters)
        ]
        for vkey in stale:
            del self.values[vkey]

    def clear(self) -> None:
        with self._lock:
            self.values, self.latest = {}, {}


CACHE = ValueCache()


def _value_key(spec: KpiSpec, day: date, scope: Scope, config: Mapping[str, Any]) -> ValueKey:
    return (
        spec.key,
        day,
        scope.name,
        scope.districts,
        json.dumps(config, sort_keys=True, default=str),
    )


class Values:
    """KPI values for one request: `compute` answers from the cache or computes; `close`
    keeps what was computed if its families' counters did not move meanwhile.
    `computed_at`: when the oldest value used was computed (the database clock)."""

    def __init__(self, conn: psycopg.Connection, cache: ValueCache | None = CACHE) -> None:
        self.conn, self.cache = conn, cache
        self.key, self.minute, self.started = read_key(conn)
        self.computed_at: datetime = self.started
        self.computed: dict[ValueKey, Entry] = {}
        self.kept: bool | None = None

    def compute(
        self, spec: KpiSpec, day: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        vkey = _value_key(spec, day, scope, config)
        found = self.computed.get(vkey)
        if found is None and self.cache is not None:
            versions = versions_of(self.key, inputs_of(spec))
            found = self.cache.lookup(versions, self.minute, vkey)
        if found is None:
            value = spec.compute(self.conn, day, scope, config)
            minute = self.minute if spec.reads_readings else None
            found = (value, self.started, minute, versions_of(self.key, inputs_of(spec)))
            self.computed[vkey] = found
        self.computed_at = min(self.computed_at, found[1])
        return found[0]

    def close(self) -> bool:
        """Keep each computed value whose families' counters still read the same (a
        readings value only within its minute); whether any were kept."""
        if self.cache is None or not self.computed:
            self.kept = False
            return False
        again, minute, _ = read_key(self.conn)
        keep = {}
        for vkey, entry in self.computed.items():
            families = tuple(f for f, _ in entry[3][1])
            if versions_of(again, families) == entry[3] and entry[2] in (None, minute):
                keep[vkey] = entry
        if keep:
            self.cache.store(again, keep)
        self.kept = bool(keep)
        return self.kept
