"""A cache of computed KPI values for the API's plan endpoints (GET /targets, /targets/{id},
/feed, /kpis/{key}): issue #11 wants them within 200 ms and the lighting KPIs alone take
longer than that to compute from the readings.

A value is stored under the *input key* read just before computing it:

* the counter of each input area in `plan_input_versions` (migration 028), bumped by the
  commit of any transaction that changed a ledger (the registry of devices and districts
  included) or a field of an alert a KPI could read;
* the database's name (a process that serves one database never sees another key, but
  tests do);
* for a KPI that reads readings or device status (`KpiSpec.reads_readings`), also the
  current minute of the database clock.

A value is reused only while its key reads the same: a ledger edit or an alert change is
seen by the very next request; readings (not counted by the triggers: they arrive every
second) are seen within the minute. So a value computed from readings may be up to 60 s
old; the responses say when their values were computed (`computed_at`). A value computed
from ledgers and alerts alone is kept until one of them changes.

Races: the key is read before computing and read again after; the values are stored only
when both reads agree (for a readings KPI, the minute too). The counters are bumped inside
the committing transaction, so a change that commits while a value is computed changes the
second read and the value is returned but not kept. (Under READ COMMITTED each statement of
a computation sees what was committed when it started; if the key did not move between the
two reads, every statement saw the same ledgers and alerts.)

The cache lives in the process and holds the values of one set of counters (newer counters
replace the older: an older set can never be read again), at most `MAX_VALUES` of them.
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
KEY_SQL = """SELECT current_database(), coalesce(array_agg(version ORDER BY area), '{}'),
       date_trunc('minute', clock_timestamp()), clock_timestamp()
FROM plan_input_versions"""

InputKey = tuple[str, tuple[int, ...]]  # (database, counters)
ValueKey = tuple[str, date, str, tuple[str, ...] | None, str]
# (the value, when it was computed, the minute it holds for: None = until the counters move)
Entry = tuple[KpiValue, datetime, datetime | None]


def read_key(conn: psycopg.Connection) -> tuple[InputKey, datetime, datetime]:
    """(the input key, the current minute, the database clock now)."""
    row = conn.execute(KEY_SQL).fetchone()
    assert row is not None
    return (row[0], tuple(row[1])), row[2], row[3]


def _newer_or_same(a: InputKey, b: InputKey) -> bool:
    """Are counters `a` at least as new as `b`? Another database's key (a test's) replaces
    any."""
    if a[0] != b[0] or len(a[1]) != len(b[1]):
        return True
    return all(x >= y for x, y in zip(a[1], b[1], strict=True))


@dataclass
class ValueCache:
    """The values of one set of counters (see the module docstring)."""

    max_values: int = MAX_VALUES
    key: InputKey | None = None
    values: dict[ValueKey, Entry] = field(default_factory=dict)
    hits: int = 0
    misses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def lookup(self, key: InputKey, minute: datetime, vkey: ValueKey) -> Entry | None:
        with self._lock:
            found = self.values.get(vkey) if self.key == key else None
            if found is not None and found[2] is not None and found[2] != minute:
                found = None  # a readings value of an earlier minute
            if found is None:
                self.misses += 1
            else:
                self.hits += 1
            return found

    def store(self, key: InputKey, computed: Mapping[ValueKey, Entry]) -> None:
        with self._lock:
            if self.key != key:
                if self.key is not None and not _newer_or_same(key, self.key):
                    return  # an older request finishing late: its values are not current
                self.key, self.values = key, {}
            for vkey, entry in computed.items():
                if vkey not in self.values and len(self.values) >= self.max_values:
                    break
                self.values[vkey] = entry

    def clear(self) -> None:
        with self._lock:
            self.key, self.values = None, {}


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
    keeps what was computed if the input key did not move meanwhile. `computed_at`: when
    the oldest value used was computed (the database clock)."""

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
            found = self.cache.lookup(self.key, self.minute, vkey)
        if found is None:
            value = spec.compute(self.conn, day, scope, config)
            found = (value, self.started, self.minute if spec.reads_readings else None)
            self.computed[vkey] = found
        self.computed_at = min(self.computed_at, found[1])
        return found[0]

    def close(self) -> bool:
        """Keep the computed values if the counters still read the same (a readings value
        only within its minute); whether any were kept."""
        if self.cache is None or not self.computed:
            self.kept = False
            return False
        again, minute, _ = read_key(self.conn)
        keep = {
            vkey: entry
            for vkey, entry in self.computed.items()
            if again == self.key and (entry[2] is None or entry[2] == minute)
        }
        if keep:
            self.cache.store(self.key, keep)
        self.kept = bool(keep)
        return self.kept
