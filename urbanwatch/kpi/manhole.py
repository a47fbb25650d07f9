"""Manhole-cover KPIs (docs/domain.md §2.6): pure formulas over ledger facts, and their specs.

Defect rates count confirmed defects only (a sensor candidate counts once an inspector
confirms it) and leave out NO_ANTIFALL, which has its own KPI (§2.5). "Remediated" means
remediated and verified by the day (§2.6: remediated_at ≤ t ∧ verified).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from urbanwatch.kinds.manhole import SPEC as MANHOLE_KIND
from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, day_end, ratio, register
from urbanwatch.queries import kpi as q

# §2.5: tracked by anti_fall_install_rate instead [P].
DEFECT_DEFAULTS: dict[str, Any] = {"exclude_types": ["NO_ANTIFALL"], "all_window": "year"}
ONLINE_DEFAULTS: dict[str, Any] = {"offline_after_s": MANHOLE_KIND.cadence.offline_after_s()}


def _counted(d: q.DefectFact, as_of: date, exclude: Sequence[str]) -> bool:
    return d.status == "confirmed" and d.discovered_on <= as_of and d.defect_type not in exclude


def _fixed(d: q.DefectFact, as_of: date) -> bool:
    return bool(
        d.remediated_on and d.remediated_on <= as_of and d.verified_on and d.verified_on <= as_of
    )


def _key(d: q.DefectFact) -> str:
    return f"{d.cover_id}/{d.defect_type}/{d.discovered_on}"


def defect_remediation_rate(
    defects: Sequence[q.DefectFact], as_of: date, config: Mapping[str, Any], *, baseline: bool
) -> KpiValue:
    """|{d ∈ D : remediated ∧ verified by as_of}| / |D|. D = the frozen 2021 baseline
    (`baseline`), or the baseline plus defects found in as_of's year (`all_window` 'year',
    §2.6) or since the census ('all')."""
    exclude = tuple(config.get("exclude_types", ()))
    year_start = date(as_of.year, 1, 1) if config.get("all_window", "year") == "year" else None
    in_d, excluded = [], []
    for d in defects:
        if not _counted(d, as_of, exclude):
            if d.discovered_on <= as_of:
                excluded.append(f"{_key(d)} ({d.status}, {d.defect_type})")
            continue
        later = not baseline and (year_start is None or d.discovered_on >= year_start)
        if d.baseline_2021 or later:
            in_d.append(d)
    done = sum(1 for d in in_d if _fixed(d, as_of))
    return ratio(done, len(in_d), exclusions=excluded, defaults=config)


def anti_fall_install_rate(covers: Sequence[q.CoverFact], as_of: date) -> KpiValue:
    required = [c for c in covers if c.anti_fall_required]
    fitted = [c for c in required if c.anti_fall_installed_on and c.anti_fall_installed_on <= as_of]
    return ratio(len(fitted), len(required))


def intact_rate(
    covers: Sequence[q.CoverFact], defects: Sequence[q.DefectFact], as_of: date
) -> KpiValue:
    """(N_total − N covers with an open confirmed defect) / N_total."""
    total = {c.cover_id for c in covers if c.installed_on is None or c.installed_on <= as_of}
    broken = {
        d.cover_id
        for d in defects
        if _counted(d, as_of, ()) and not (d.remediated_on and d.remediated_on <= as_of)
    }
    return ratio(len(total) - len(total & broken), len(total))


def smart_coverage_rate_core(covers: Sequence[q.CoverFact]) -> KpiValue:
    core = [c for c in covers if c.in_core_area]
    return ratio(sum(1 for c in core if c.smart_monitor_id), len(core))


def is_online(m: q.MonitorFact, at: datetime, default_s: int) -> bool:
    """A message within 2 × its own heartbeat + grace, or `default_s` without one."""
    if m.last_seen is None:
        return False
    limit = MANHOLE_KIND.cadence.offline_after_s(m.heartbeat_s) if m.heartbeat_s else default_s
    return at - m.last_seen <= timedelta(seconds=limit)


def online_rate(
    monitors: Sequence[q.MonitorFact], at: datetime, config: Mapping[str, Any]
) -> KpiValue:
    """Online = any message within 2 × heartbeat + grace before `at` (docs/domain.md §0)."""
    installed = [m for m in monitors if m.installed_at is None or m.installed_at <= at.date()]
    online = [m for m in installed if is_online(m, at, int(config["offline_after_s"]))]
    return ratio(len(online), len(installed), defaults=config)


# --- specs: gather, then count ------------------------------------------------------------


def _rate(baseline: bool) -> Any:
    def compute(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        return defect_remediation_rate(
            q.defects(conn, scope.districts), as_of, config, baseline=baseline
        )

    return compute


def _open_defects(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    exclude = tuple(config.get("exclude_types", ()))
    return [
        d.as_json()
        for d in q.defects(conn, scope.districts)
        if _counted(d, as_of, exclude) and not _fixed(d, as_of)
    ]


def _unremediated(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """What keeps covers from being intact: confirmed defects not remediated by as_of."""
    return [
        d.as_json()
        for d in q.defects(conn, scope.districts)
        if _counted(d, as_of, ()) and not (d.remediated_on and d.remediated_on <= as_of)
    ]


def _missing_nets(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    return [
        c.as_json()
        for c in q.covers(conn, scope.districts)
        if c.anti_fall_required
        and not (c.anti_fall_installed_on and c.anti_fall_installed_on <= as_of)
    ]


def _offline(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    at = day_end(as_of)
    found = q.monitors(conn, scope.districts, at)
    default_s = int(config["offline_after_s"])
    return [m.as_json() for m in found if not is_online(m, at, default_s)]


MANHOLE = frozenset({"manhole"})  # the counted families each KPI reads (KpiSpec.inputs)


def _spec(key: str, zh: str, en: str, compute: Any, **kw: Any) -> None:
    register(KpiSpec(f"manhole.{key}", "manhole", zh, en, "%", "higher", "§2.6", compute, **kw))


_spec(
    "defect_remediation_rate_baseline", "病害窨井盖治理率(2021基线)",
    "defect remediation rate (frozen 2021 baseline)", _rate(True), items=_open_defects,
    defaults=DEFECT_DEFAULTS,
    reads_readings=False, inputs=MANHOLE,
)  # fmt: skip
_spec(
    "defect_remediation_rate_all", "病害窨井盖治理率(全部)",
    "defect remediation rate (baseline + found this year)", _rate(False), items=_open_defects,
    defaults=DEFECT_DEFAULTS,
    reads_readings=False, inputs=MANHOLE,
)  # fmt: skip
_spec(
    "anti_fall_install_rate", "防坠设施安装率", "safety-net install rate",
    lambda c, d, s, cfg: anti_fall_install_rate(q.covers(c, s.districts), d), items=_missing_nets,
    reads_readings=False, inputs=MANHOLE,
)  # fmt: skip
_spec(
    "intact_rate", "窨井盖完好率", "cover intact rate",
    lambda c, d, s, cfg: intact_rate(q.covers(c, s.districts), q.defects(c, s.districts), d),
    items=_unremediated,
    reads_readings=False, inputs=MANHOLE,
)  # fmt: skip
_spec(
    "smart_coverage_rate_core", "核心区智能监管覆盖率", "smart coverage in the core area",
    lambda c, d, s, cfg: smart_coverage_rate_core(
        [x for x in q.covers(c, s.districts) if x.installed_on is None or x.installed_on <= d]
    ),
    reads_readings=False, inputs=MANHOLE,
)  # fmt: skip
_spec(
    "online_rate", "设备在线率", "smart monitor online rate",
    lambda c, d, s, cfg: online_rate(q.monitors(c, s.districts, day_end(d)), day_end(d), cfg),
    items=_offline, defaults=ONLINE_DEFAULTS, inputs=frozenset({"registry"}),
)  # fmt: skip
