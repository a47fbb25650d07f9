"""Defect candidates from sensor alerts (docs/domain.md §2.5): an MH_TILT, MH_FLIP, or MH_OPEN
outside a work window (the engine raises that one as critical) on a cover's smart monitor
opens a `candidate` defect that an inspector confirms or rejects (the `status` column, by
import or `PUT /ledgers/manhole_defects/rows`). Candidates never count in a KPI until
confirmed."""

from __future__ import annotations

import psycopg

from urbanwatch import audit
from urbanwatch.kpi.base import LOCAL
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import ledgers as queries

# Which §2.5 type a sensor alarm suggests [P]: a flipped cover may be gone; a tilted or
# opened one is not seated in its frame. The inspector corrects the type when confirming.
RULE_TYPES = {"MH_FLIP": "MISSING", "MH_TILT": "DISPLACED", "MH_OPEN": "DISPLACED"}

ALERTS = """
SELECT a.id, a.rule_id, a.opened_at, c.cover_id FROM alerts a
JOIN manhole_covers c ON c.smart_monitor_id = a.device_id
WHERE a.rule_id IN ('MH_TILT', 'MH_FLIP') OR (a.rule_id = 'MH_OPEN' AND a.severity = 'critical')
ORDER BY a.id"""


def open_candidates(conn: psycopg.Connection, actor: audit.Actor) -> int:
    """One candidate per alert not yet in the ledger; the number created."""
    spec = get_ledger("manhole_defects")
    linked = {
        r[0]
        for r in conn.execute("SELECT alert_id FROM manhole_defects WHERE alert_id IS NOT NULL")
    }
    created = 0
    for alert_id, rule, opened_at, cover_id in conn.execute(ALERTS).fetchall():
        if alert_id in linked:
            continue
        day = opened_at.astimezone(LOCAL).date()
        row = {
            "cover_id": cover_id,
            "defect_type": RULE_TYPES[rule],
            "discovered_on": day,
            "source": "sensor",
            "status": "candidate",
            "alert_id": alert_id,
            "note": f"{rule} alert #{alert_id}",
        }
        with conn.transaction():
            if queries.get_row(conn, spec, row, lock=True) is not None:
                continue  # the same defect is already in the ledger that day
            queries.insert_row(conn, spec, row)
            rid = f"{cover_id}/{row['defect_type']}/{day}"
            after = {**row, "discovered_on": day.isoformat()}
            audit.record(conn, actor, "create", "ledger:manhole_defects", rid, after=after)
        created += 1
    return created
