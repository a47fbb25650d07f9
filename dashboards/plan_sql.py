"""The plan-progress board's SQL: each target's current value against its line and its status,
as urbanwatch/kpi/status.py decides it, from the daily snapshots (kpi_daily) and the targets
(plan_targets). Dates are local (Asia/Shanghai) calendar days, as the snapshots'."""

from __future__ import annotations

from urbanwatch.kpi.status import LABELS, TREND_DAYS

TZ = "Asia/Shanghai"
# The board's "as of": the local date at the end of its time range.
AS_OF = f"($__timeTo()::timestamptz AT TIME ZONE '{TZ}')::date"
FROM_DAY = f"($__timeFrom()::timestamptz AT TIME ZONE '{TZ}')::date"
# Status codes in the order of the status panel; the board maps them to words and colours.
STATUS_CODES = ("met", "on_track", "at_risk", "missed", "no_data")
STATUS_COLOURS = {
    "met": "green",
    "on_track": "blue",
    "at_risk": "orange",
    "missed": "red",
    "no_data": "#8e8e8e",
}


def status_text(code: str) -> str:
    zh, en = LABELS[code]  # type: ignore[index]
    return f"{zh} {en}"


def _meets(value: str) -> str:
    return (
        f"CASE WHEN t.comparator = '>=' THEN {value} >= t.target_value "
        f"ELSE {value} <= t.target_value END"
    )


def assessed(scope_expr: str = "coalesce(p.district, p.scope)", extra: str = "") -> str:
    """CTEs `asof` and `t`: one row per target (and per scope when `scope_expr` names a
    joined table's column) with its value on the as-of day, the value on its deadline, the
    trend and its status (status.py's rules, in SQL)."""
    return f"""asof AS (SELECT {AS_OF} AS d),
base AS (
    SELECT p.id, p.kpi, p.title_zh, p.title_en, p.scope, p.comparator, p.target_value, p.unit,
           p.deadline, p.clause_ref, p.clause_zh, p.lead_units, {scope_expr} AS kscope, asof.d
    FROM plan_targets p CROSS JOIN asof {extra}
),
t AS (
    SELECT b.*, cur.day, cur.value, cur.numerator, cur.denominator, fin.value AS final,
           tr.slope, tr.points
    FROM base b
    LEFT JOIN LATERAL (
        SELECT k.day, k.value, k.numerator, k.denominator FROM kpi_daily k
        WHERE k.kpi = b.kpi AND k.scope = b.kscope AND k.day <= b.d
        ORDER BY k.day DESC LIMIT 1
    ) cur ON true
    LEFT JOIN LATERAL (
        SELECT k.value FROM kpi_daily k
        WHERE k.kpi = b.kpi AND k.scope = b.kscope AND k.day <= b.deadline
          AND k.value IS NOT NULL
        ORDER BY k.day DESC LIMIT 1
    ) fin ON true
    LEFT JOIN LATERAL (
        SELECT regr_slope(k.value, k.day - DATE '2000-01-01') AS slope,
               count(DISTINCT k.day) AS points
        FROM kpi_daily k
        WHERE k.kpi = b.kpi AND k.scope = b.kscope AND k.value IS NOT NULL
          AND k.day <= b.d AND k.day >= b.d - {TREND_DAYS}
    ) tr ON true
),
s AS (
    SELECT t.*, t.deadline - t.d AS days_left,
           CASE
               WHEN t.kpi IS NULL OR t.target_value IS NULL THEN 'no_data'
               WHEN t.deadline < t.d THEN CASE WHEN t.final IS NULL THEN 'no_data'
                                               WHEN {_meets("t.final")} THEN 'met'
                                               ELSE 'missed' END
               WHEN t.value IS NULL THEN 'no_data'
               WHEN {_meets("t.value")} THEN 'met'
               WHEN t.deadline IS NULL THEN 'missed'
               WHEN t.points < 2 THEN 'at_risk'
               WHEN {_meets("t.value + t.slope * (t.deadline - t.d)")} THEN 'on_track'
               ELSE 'at_risk'
           END AS status,
           CASE WHEN t.deadline >= t.d AND t.points >= 2
                THEN t.value + t.slope * (t.deadline - t.d) END AS projection
    FROM t
)"""


def line(alias: str = "s") -> str:
    return f"{alias}.comparator || ' ' || {alias}.target_value || ' ' || {alias}.unit"


# Natural order of the ids: T1, T2a, T2b, ..., T10.
ID_ORDER = "(regexp_replace(s.id, '\\D', '', 'g'))::int, s.id"


def targets_sql() -> str:
    return f"""WITH {assessed()}
SELECT s.id, s.title_zh || ' ' || s.title_en AS "目标 target",
       s.kscope AS "范围 scope", round(s.value::numeric, 2) AS "当前值 value",
       {line()} AS "目标线 line", s.status AS "状态 status",
       round(s.projection::numeric, 1) AS "截止预测 projection",
       s.days_left AS "距截止（天）days to deadline", s.deadline AS "截止 deadline",
       s.day AS "数据日 as of", s.clause_ref || ' ' || s.clause_zh AS "条款 clause",
       array_to_string(s.lead_units, '、') AS "牵头单位 lead units", s.kpi
FROM s ORDER BY {ID_ORDER}"""


def status_counts_sql() -> str:
    counts = ", ".join(
        f"count(*) FILTER (WHERE s.status = '{c}') AS \"{status_text(c)}\"" for c in STATUS_CODES
    )
    return f"WITH {assessed()}\nSELECT {counts} FROM s"


_DISTRICTS = (
    "JOIN districts dd ON dd.code IN ($district) AND (p.scope IN ('city', 'district') "
    "OR dd.district_class = p.scope) AND (p.district IS NULL OR p.district = dd.code)"
)
# How far a value is from the line, in the target's unit; positive: short of it.
GAP = (
    "CASE WHEN s.comparator = '>=' THEN s.target_value - s.value ELSE s.value - s.target_value END"
)


def districts_sql() -> str:
    """The chosen target in each district of its scope, worst first."""
    return f"""WITH {assessed("dd.code", _DISTRICTS)}
SELECT dd.name_zh || ' ' || dd.name_en AS "区 district", round(s.value::numeric, 2)
       AS "当前值 value", {line()} AS "目标线 line", s.status AS "状态 status",
       round(({GAP})::numeric, 2) AS "差距 gap", s.numerator AS "分子 numerator",
       s.denominator AS "分母 denominator", s.day AS "数据日 as of",
       dd.code AS "代码 code", s.kpi
FROM s JOIN districts dd ON dd.code = s.kscope
WHERE s.id = '$target'
ORDER BY {GAP} DESC NULLS LAST, 1"""


def worst_sql() -> str:
    """The five districts furthest short of the chosen target's line."""
    return f"""WITH {assessed("dd.code", _DISTRICTS)}
SELECT dd.name_zh || ' ' || dd.name_en AS "区 district", s.value AS "当前值 value"
FROM s JOIN districts dd ON dd.code = s.kscope
WHERE s.id = '$target' AND s.value IS NOT NULL AND {GAP} > 0
ORDER BY {GAP} DESC LIMIT 5"""


def history_sql() -> str:
    """The chosen target's KPI by day in its scope, with its line as a second series."""
    return f"""SELECT (k.day::timestamp AT TIME ZONE '{TZ}') AS time,
       p.id || ' ' || p.title_zh AS metric, k.value
FROM kpi_daily k JOIN plan_targets p ON k.kpi = p.kpi AND k.scope = coalesce(p.district, p.scope)
WHERE p.id = '$target' AND k.day BETWEEN {FROM_DAY} AND {AS_OF}
UNION ALL
SELECT (k.day::timestamp AT TIME ZONE '{TZ}'), '目标线 target ' || p.comparator || ' '
       || p.target_value, p.target_value
FROM kpi_daily k JOIN plan_targets p ON k.kpi = p.kpi AND k.scope = coalesce(p.district, p.scope)
WHERE p.id = '$target' AND p.target_value IS NOT NULL
  AND k.day BETWEEN {FROM_DAY} AND {AS_OF}
ORDER BY 1"""


def district_history_sql() -> str:
    """The chosen target's KPI by day in each chosen district."""
    return f"""SELECT (k.day::timestamp AT TIME ZONE '{TZ}') AS time,
       dd.name_zh || ' ' || dd.name_en AS metric, k.value
FROM kpi_daily k JOIN plan_targets p ON k.kpi = p.kpi
JOIN districts dd ON dd.code = k.scope
WHERE p.id = '$target' AND dd.code IN ($district)
  AND k.day BETWEEN {FROM_DAY} AND {AS_OF}
ORDER BY 1"""


def kpi_history_sql(kpis: tuple[str, ...], titles: dict[str, str]) -> str:
    """Daily snapshots of some KPIs for the city (a long-format series per KPI)."""
    names = ", ".join(f"('{k}', '{titles[k]}')" for k in kpis)
    return f"""SELECT (k.day::timestamp AT TIME ZONE '{TZ}') AS time, n.title AS metric, k.value
FROM kpi_daily k JOIN (VALUES {names}) AS n(kpi, title) ON n.kpi = k.kpi
WHERE k.scope = 'city' AND k.day BETWEEN {FROM_DAY} AND {AS_OF}
ORDER BY 1"""
