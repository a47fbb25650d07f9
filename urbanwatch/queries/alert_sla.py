"""`alert_sla`: the on-site and resolve periods per severity (migration 018) that the alert
triggers turn into `site_due_at` / `resolve_due_at` (022, 023, 027), read and changed through
`GET`/`PUT /alert-sla` and `urbanwatch alerts sla show|set` (docs/api-alerts.md).

A change applies to alerts written or reopened after it; deadlines already set stay as they
are. Every change is audited in the same transaction (`alert_sla.update`, before and after).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

from urbanwatch import audit
from urbanwatch.alerting.model import SEVERITIES, Severity

# A year: longer is surely a typing mistake (the column holds up to 68 years) [P].
MAX_PERIOD_S = 365 * 86400
SELECT = "SELECT severity, site_s, resolve_s FROM alert_sla WHERE severity = ANY(%s)"
UPSERT = """INSERT INTO alert_sla (severity, site_s, resolve_s) VALUES (%s, %s, %s)
            ON CONFLICT (severity) DO UPDATE SET site_s = EXCLUDED.site_s,
                                                 resolve_s = EXCLUDED.resolve_s"""
Period = Field(strict=True, gt=0, le=MAX_PERIOD_S)


class SlaPeriods(BaseModel):
    """On site within `site_s`, resolved within `resolve_s` (seconds; None: no deadline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    site_s: int | None = Period
    resolve_s: int | None = Period

    @model_validator(mode="after")
    def _site_first(self) -> SlaPeriods:
        if self.site_s is not None and self.resolve_s is not None and self.site_s > self.resolve_s:
            raise ValueError(
                f"到场时限不能长于处置时限 site_s ({self.site_s} s) must not be longer than "
                f"resolve_s ({self.resolve_s} s): the crew is on site before the fault is resolved"
            )
        return self


class AlertSla(SlaPeriods):
    severity: Severity


def rank(severity: str) -> int:
    """critical first, info last: the order people read the table in."""
    return -SEVERITIES.index(severity)  # type: ignore[arg-type]


def list_sla(conn: psycopg.Connection) -> list[AlertSla]:
    """Every severity, critical first; a severity without a row has no deadlines."""
    with conn.cursor(row_factory=class_row(AlertSla)) as cur:
        found = {r.severity: r for r in cur.execute(SELECT, (list(SEVERITIES),))}
    return sorted(
        (found.get(s) or AlertSla(severity=s, site_s=None, resolve_s=None) for s in SEVERITIES),
        key=lambda r: rank(r.severity),
    )


def _periods(row: AlertSla) -> dict[str, Any]:
    return {"site_s": row.site_s, "resolve_s": row.resolve_s}


def set_sla(
    conn: psycopg.Connection,
    severity: Severity,
    periods: SlaPeriods,
    actor: audit.Actor,
    note: str | None = None,
) -> AlertSla:
    """Replace one severity's periods (audited, in one transaction); returns the new row."""
    with conn.transaction():
        conn.execute("LOCK TABLE alert_sla IN SHARE ROW EXCLUSIVE MODE")  # before = what we change
        before = next(r for r in list_sla(conn) if r.severity == severity)
        conn.execute(UPSERT, (severity, periods.site_s, periods.resolve_s))
        after = AlertSla(severity=severity, site_s=periods.site_s, resolve_s=periods.resolve_s)
        audit.record(
            conn,
            actor,
            "alert_sla.update",
            "alert_sla",
            severity,
            before=_periods(before),
            after=_periods(after),
            detail={"note": note} if note else None,
        )
    return after
