"""Verification by data (docs/domain.md §3.5): after a waterlogging point's works are accepted,
the next qualifying rain (an event of ≥ 25 mm) must stay under 15 cm at the point's sensor;
else the point is `regressed` and an alert (WL_REGRESSED) is raised for its lead unit.

The verdict is pure (`rain_events`, `judge`); `verify_points` gathers the readings, stores
the verdict on the ledger row (audited) and opens the alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg

from urbanwatch import audit
from urbanwatch.kpi.base import LOCAL, day_end
from urbanwatch.queries import ledgers as queries

# [P] §3.5: 大雨 class rain (≥ 25 mm), 15 cm national lane criterion (GB 50014); rain events
# are separated by 6 dry hours, and the depth is watched until 6 h after the rain ends.
DEFAULTS: dict[str, Any] = {"rain_mm": 25.0, "max_depth_cm": 15.0, "dry_gap_h": 6, "after_h": 6}
Verdict = Literal["pending", "verified", "regressed"]


@dataclass(frozen=True)
class RainEvent:
    start: datetime
    end: datetime
    total_mm: float


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    event: RainEvent | None = None
    max_depth_cm: float | None = None


def rain_events(readings: Iterable[tuple[datetime, float]], dry_gap: timedelta) -> list[RainEvent]:
    """Rainfall readings (time-ordered, mm per interval) grouped into events: a new event
    starts after `dry_gap` without rain."""
    events: list[RainEvent] = []
    start = end = None
    total = 0.0
    for ts, mm in readings:
        if mm <= 0:
            continue
        if start is not None and end is not None and ts - end > dry_gap:
            events.append(RainEvent(start, end, total))
            start, total = None, 0.0
        start = start or ts
        end = ts
        total += mm
    if start is not None and end is not None:
        events.append(RainEvent(start, end, total))
    return events


def judge(
    accepted_on: date,
    events: Sequence[RainEvent],
    depths: Sequence[tuple[datetime, float]],
    now: datetime,
    config: Mapping[str, Any],
) -> Judgement:
    """The verdict from the first qualifying rain after acceptance whose watch window has
    closed by `now`."""
    after = timedelta(hours=float(config["after_h"]))
    qualifying = [
        e
        for e in events
        if e.start >= day_end(accepted_on) and e.total_mm >= float(config["rain_mm"])
    ]
    if not qualifying:
        return Judgement("pending", f"no rain event ≥ {config['rain_mm']:g} mm since acceptance")
    event = qualifying[0]
    if event.end + after > now:
        return Judgement("pending", "the qualifying rain's watch window is still open", event)
    window = [d for ts, d in depths if event.start <= ts <= event.end + after]
    if not window:
        return Judgement("pending", "no depth readings at the point during the rain", event)
    peak = max(window)
    rain = f"{event.total_mm:.1f} mm on {event.start.astimezone(LOCAL):%Y-%m-%d}"
    if peak < float(config["max_depth_cm"]):
        return Judgement("verified", f"{rain}: peak {peak:g} cm < 15 cm", event, peak)
    return Judgement("regressed", f"{rain}: peak {peak:g} cm ≥ 15 cm", event, peak)


def verify_points(
    conn: psycopg.Connection,
    now: datetime,
    actor: audit.Actor,
    config: Mapping[str, Any] | None = None,
) -> dict[str, int]:
    """Judge every accepted, still pending point with a sensor; store verdicts, open alerts."""
    cfg = {**DEFAULTS, **(config or {})}
    counts = {"pending": 0, "verified": 0, "regressed": 0, "no_gauge": 0}
    for point in queries.pending_points(conn):
        gauge = point.rain_gauge_id or queries.district_gauge(conn, point.district)
        if gauge is None:
            counts["no_gauge"] += 1
            continue
        since = day_end(point.accepted_on)
        rain = queries.rain_readings(conn, gauge, since, now)
        events = rain_events(rain, timedelta(hours=float(cfg["dry_gap_h"])))
        depths = queries.depth_readings(conn, point.sensor_id, since, now)
        verdict = judge(point.accepted_on, events, depths, now, cfg)
        counts[verdict.verdict] += 1
        if verdict.verdict == "pending":
            continue
        with conn.transaction():
            _store(conn, point, verdict, gauge, actor)
    return counts


def _store(
    conn: psycopg.Connection,
    point: queries.PendingPoint,
    verdict: Judgement,
    gauge: str,
    actor: audit.Actor,
) -> None:
    assert verdict.event is not None
    day = verdict.event.start.astimezone(LOCAL).date()
    detail = {
        "reason": verdict.reason,
        "rain_gauge_id": gauge,
        "rain_mm": round(verdict.event.total_mm, 1),
        "rain_start": verdict.event.start.isoformat(),
        "rain_end": verdict.event.end.isoformat(),
        "max_depth_cm": verdict.max_depth_cm,
    }
    queries.set_verdict(conn, point.point_id, verdict.verdict, day, detail)
    audit.record(
        conn, actor, "verify", "ledger:waterlog_points", point.point_id,
        before={"verification": "pending"},
        after={"verification": verdict.verdict, "verified_on": day.isoformat()}, detail=detail,
    )  # fmt: skip
    if verdict.verdict == "regressed":
        queries.open_regressed_alert(conn, point, verdict.event.end, detail)
