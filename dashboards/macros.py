"""Grafana's PostgreSQL macro expansion, as its Go backend does it, so that panel SQL can be
run outside Grafana (tests, bench). Pure: no I/O.

Order and output follow grafana/grafana `pkg/tsdb/grafana-postgresql-datasource/macros.go`
and `sqleng/sql_engine.go`, and @grafana/sql's `interpolateVariable`: the frontend
substitutes template variables first (multi-value variables as quoted, comma-joined
literals), then `$__interval_ms`, `$__interval` and the epoch bounds are replaced, then each
`$__macro(args)` (no nested parentheses in args; an unknown macro is an error).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^)]*)\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")
_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
    "M": 2592000,
    "y": 31536000,
}
_FORMAT_UNITS = (
    ("y", 31_536_000_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)


class MacroError(ValueError):
    """Grafana would refuse this query (unknown macro, bad interval, undefined variable)."""


def parse_interval(text: str) -> timedelta:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)", text.strip().strip("'\""))
    if not match:
        raise MacroError(f"error parsing interval {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def format_interval(interval: timedelta) -> str:
    """gtime.FormatInterval: the largest whole unit, truncated (90 s -> '1m')."""
    ms = int(interval.total_seconds() * 1000)
    for unit, size in _FORMAT_UNITS:
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@dataclass(frozen=True)
class QueryContext:
    """What Grafana knows when it runs a panel's query."""

    start: datetime
    end: datetime
    interval: timedelta
    timescaledb: bool = False
    variables: Mapping[str, str | Sequence[str]] = field(default_factory=dict)
    multi: frozenset[str] = frozenset()  # multi-value / include-all variables: quoted


def interpolate_variables(sql: str, ctx: QueryContext) -> str:
    """The frontend's step (@grafana/sql SqlDatasource.interpolateVariable)."""

    def render(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name.startswith("__"):
            return match[0]  # a Grafana global, replaced by the backend
        if name not in ctx.variables:
            raise MacroError(f"variable ${name} is not defined")
        value = ctx.variables[name]
        if isinstance(value, str):
            value = [value]
        if name in ctx.multi:
            return ",".join(_literal(v) for v in value)
        return ",".join(str(v).replace("'", "''") for v in value)

    return _VARIABLE.sub(render, sql)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL Grafana's backend sends to PostgreSQL for this panel query."""
    sql = interpolate_variables(sql, ctx)
    sql = sql.replace("$__interval_ms", str(int(ctx.interval.total_seconds() * 1000)))
    sql = sql.replace("$__interval", format_interval(ctx.interval))
    sql = sql.replace("$__unixEpochFrom()", str(int(ctx.start.timestamp())))
    sql = sql.replace("$__unixEpochTo()", str(int(ctx.end.timestamp())))
    start, end = _rfc3339(ctx.start), _rfc3339(ctx.end)

    def macro(match: re.Match[str]) -> str:
        name, args = match[1], [a.strip() for a in match[2].split(",")]
        if name == "__timeGroup" and sql[match.end() : match.end() + 1] == ",":
            name = "__timeGroupAlias"  # Grafana's pre-5.3 compatibility rule
        if name == "__time":
            return f'{args[0]} AS "time"'
        if name == "__timeEpoch":
            return f'extract(epoch from {args[0]}) as "time"'
        if name == "__timeFilter":
            return f"{args[0]} BETWEEN '{start}' AND '{end}'"
        if name == "__timeFrom":
            return f"'{start}'"
        if name == "__timeTo":
            return f"'{end}'"
        if name in ("__timeGroup", "__timeGroupAlias"):
            if len(args) < 2:
                raise MacroError(f"macro {name} needs time column and interval")
            seconds = parse_interval(args[1]).total_seconds()
            if ctx.timescaledb:
                group = f"time_bucket('{seconds:.3f}s',{args[0]})"
            else:
                group = f"floor(extract(epoch from {args[0]})/{seconds:g})*{seconds:g}"
            return group + (' AS "time"' if name.endswith("Alias") else "")
        if name == "__unixEpochFilter":
            lo, hi = int(ctx.start.timestamp()), int(ctx.end.timestamp())
            return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
        raise MacroError(f"unknown macro {name!r}")

    return _MACRO.sub(macro, sql)
