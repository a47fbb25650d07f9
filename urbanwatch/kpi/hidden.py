"""Hidden-danger KPIs (T9, 三(七)1–2): rectification rate and overdue points."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import psycopg

from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, count, ratio, register
from urbanwatch.queries import kpi as q


def rectification_rate(hazards: Sequence[q.HazardFact], as_of: date) -> KpiValue:
    """N(rectified by as_of) / N(found by as_of)."""
    found = [h for h in hazards if h.found_on <= as_of]
    done = [h for h in found if h.rectified_on and h.rectified_on <= as_of]
    return ratio(len(done), len(found))


def overdue(hazards: Sequence[q.HazardFact], as_of: date) -> list[q.HazardFact]:
    """Found by as_of, past their deadline and not rectified by as_of."""
    return [
        h
        for h in hazards
        if h.found_on <= as_of
        and h.deadline is not None
        and h.deadline < as_of
        and not (h.rectified_on and h.rectified_on <= as_of)
    ]


def overdue_count(hazards: Sequence[q.HazardFact], as_of: date) -> KpiValue:
    return count(len(overdue(hazards, as_of)))


def _open(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        h.as_json()
        for h in q.hazards(conn, scope.districts)
        if h.found_on <= as_of and not (h.rectified_on and h.rectified_on <= as_of)
    ]


def _overdue(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [h.as_json() for h in overdue(q.hazards(conn, scope.districts), as_of)]


register(
    KpiSpec(
        "hidden.rectification_rate", "hidden", "隐患整改率", "hidden-danger rectification rate",
        "%", "higher", "T9",
        lambda c, d, s, cfg: rectification_rate(q.hazards(c, s.districts), d), items=_open,
        reads_readings=False,
        inputs=frozenset({"hazards"}),
    )
)  # fmt: skip
register(
    KpiSpec(
        "hidden.overdue_count", "hidden", "超期未整改隐患数", "hidden dangers past their deadline",
        "count", "lower", "T9",
        lambda c, d, s, cfg: overdue_count(q.hazards(c, s.districts), d), items=_overdue,
        reads_readings=False,
        inputs=frozenset({"hazards"}),
    )
)  # fmt: skip
