"""Waterlogging KPIs (docs/domain.md §3.3, §3.6): points remediated per year, remediation rate
(accepted, and verified by data; against the ledger and the frozen 2021 baseline), and
积水 events per flood season from the depth readings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

import psycopg

from urbanwatch.kpi.base import LOCAL, KpiSpec, KpiValue, Scope, count, day_end, ratio, register
from urbanwatch.queries import kpi as q

# §3.3 WL_EVENT: opens at the first reading ≥ 15 cm, closes when depth < 5 cm for 30 min [P].
EVENT_DEFAULTS: dict[str, Any] = {
    "open_cm": 15.0,
    "close_cm": 5.0,
    "close_after_min": 30,
    "season": ["06-01", "09-30"],  # 汛期 (flood season) [P]
}


@dataclass(frozen=True)
class Event:
    device_id: str
    start: datetime
    end: datetime | None  # None: still open at the last reading
    max_depth_cm: float


def segment_events(
    readings: Iterable[tuple[str, datetime, float]], config: Mapping[str, Any]
) -> list[Event]:
    """WL_EVENTs from (device, ts, depth) readings ordered by device then time."""
    open_cm, close_cm = float(config["open_cm"]), float(config["close_cm"])
    close_after = timedelta(minutes=float(config["close_after_min"]))
    events: list[Event] = []
    for device, group in groupby(readings, key=lambda r: r[0]):
        start: datetime | None = None
        peak = 0.0
        low_since: datetime | None = None
        for _, ts, depth in group:
            if start is None:
                if depth >= open_cm:
                    start, peak, low_since = ts, depth, None
                continue
            peak = max(peak, depth)
            if depth >= close_cm:
                low_since = None
                continue
            low_since = low_since or ts
            if ts - low_since >= close_after:
                events.append(Event(device, start, low_since, peak))
                start = None
        if start is not None:
            events.append(Event(device, start, None, peak))
    return events


def season_bounds(as_of: date, config: Mapping[str, Any]) -> tuple[date, date]:
    first, last = (date.fromisoformat(f"{as_of.year}-{md}") for md in config["season"])
    return first, min(last, as_of)


def points_remediated_count(points: Sequence[q.PointFact], as_of: date) -> KpiValue:
    """Points accepted (工程完工验收) in as_of's calendar year, up to as_of (§3.6)."""
    start = date(as_of.year, 1, 1)
    done = [p for p in points if p.accepted_on and start <= p.accepted_on <= as_of]
    return count(len(done), defaults={"year": as_of.year})


def remediation_rate(
    points: Sequence[q.PointFact], as_of: date, *, baseline: bool, verified: bool
) -> KpiValue:
    """N(accepted by as_of) / N(ledger points); `verified`: also verified by data (§3.5);
    `baseline`: against the frozen 2021 ledger only."""
    ledger = [p for p in points if p.baseline_2021] if baseline else list(points)
    if verified:
        done = [p for p in ledger if p.verification == "verified" and _by(p.verified_on, as_of)]
    else:
        done = [p for p in ledger if _by(p.accepted_on, as_of)]
    regressed = [
        f"{p.point_id} {p.name} (regressed)" for p in ledger if p.verification == "regressed"
    ]
    return ratio(len(done), len(ledger), exclusions=regressed if verified else ())


def _by(day: date | None, as_of: date) -> bool:
    return day is not None and day <= as_of


def events_in_season(events: Sequence[Event], first: date, last: date) -> KpiValue:
    starts = [e for e in events if first <= e.start.astimezone(LOCAL).date() <= last]
    return count(len(starts), defaults={"season": [first.isoformat(), last.isoformat()]})


# --- specs ---------------------------------------------------------------------------------


def _season_events(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[Event]:
    first, last = season_bounds(as_of, config)
    if last < first:
        return []
    since = day_end(first - timedelta(days=1))
    rows = q.depth_readings(conn, scope.districts, since, day_end(last), float(config["open_cm"]))
    return segment_events(((r.device_id, r.ts, r.depth_cm) for r in rows), config)


def _events_kpi(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> KpiValue:
    first, last = season_bounds(as_of, config)
    found = _season_events(conn, as_of, scope, config)
    value = events_in_season(found, first, max(first, last)) if last >= first else count(0)
    return KpiValue(value.value, value.numerator, None, (), {**config, **value.defaults})


def _event_items(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        {"device_id": e.device_id, "start": e.start.isoformat(),
         "end": e.end.isoformat() if e.end else None, "max_depth_cm": e.max_depth_cm}
        for e in _season_events(conn, as_of, scope, config)
    ]  # fmt: skip


def _open_points(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        p.as_json()
        for p in q.points(conn, scope.districts)
        if not _by(p.accepted_on, as_of) or p.verification != "verified"
    ]


def _rate(baseline: bool, verified: bool) -> Any:
    return lambda c, d, s, cfg: remediation_rate(
        q.points(c, s.districts), d, baseline=baseline, verified=verified
    )


def _spec(key: str, zh: str, en: str, unit: Any, compute: Any, **kw: Any) -> None:
    register(KpiSpec(f"waterlog.{key}", "waterlog", zh, en, unit, kw.pop("better", "higher"),
                     "§3.6", compute, **kw))  # fmt: skip


_spec(
    "points_remediated_count",
    "当年积水点整治数量",
    "points remediated this year",
    "count",
    lambda c, d, s, cfg: points_remediated_count(q.points(c, s.districts), d),
    items=_open_points,
    reads_readings=False,
    inputs=frozenset({"waterlog"}),
)
_spec(
    "remediation_rate",
    "积水点整治率(验收)",
    "remediation rate (accepted)",
    "%",
    _rate(False, False),
    items=_open_points,
    reads_readings=False,
    inputs=frozenset({"waterlog"}),
)
_spec(
    "remediation_rate_verified",
    "积水点整治率(数据验证)",
    "remediation rate (verified by data)",
    "%",
    _rate(False, True),
    items=_open_points,
    reads_readings=False,
    inputs=frozenset({"waterlog"}),
)
_spec(
    "remediation_rate_baseline",
    "积水点整治率(2021台账)",
    "remediation rate (frozen 2021 ledger)",
    "%",
    _rate(True, False),
    items=_open_points,
    reads_readings=False,
    inputs=frozenset({"waterlog"}),
)
_spec(
    "events_season",
    "汛期积水事件数",
    "积水 events this flood season",
    "count",
    _events_kpi,
    items=_event_items,
    defaults=EVENT_DEFAULTS,
    better="lower",
    inputs=frozenset({"registry"}),
)
