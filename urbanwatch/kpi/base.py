"""The KPI framework: what a KPI is, the registry, and the value every formula returns.

A KPI area is one module `urbanwatch/kpi/<area>.py` (manhole, waterlog, hidden, lighting,
water, ...). It defines pure formula functions (no I/O, no clock: inputs in, `KpiValue` out),
SQL that gathers their inputs (in `urbanwatch/queries/`), and registers one `KpiSpec` per KPI
with `register`. `load_all()` imports every module of this package, so a new area is a new
file and nothing else changes (the engineer adding lighting or water touches no other area).

A ratio whose denominator is 0 has no value ("no data"), never 0 % and never an error.
Each value carries its numerator, denominator, exclusions and the configuration defaults it
used, so `kpi_daily` can store them and an auditor can reproduce any past figure
(docs/domain.md §6).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import psycopg

Unit = Literal["%", "count", "km", "ratio"]
Better = Literal["higher", "lower"]
NO_DATA = "no data"
# Ledger dates and snapshot days are local calendar days (docs/domain.md §0).
LOCAL = ZoneInfo("Asia/Shanghai")


def day_end(day: date) -> datetime:
    """The end of a local calendar day: the instant a day's value describes."""
    return datetime.combine(
        day + timedelta(days=1), time(0), LOCAL
    )  # how a value without a denominator is shown (also 暂无数据 in zh)


@dataclass(frozen=True)
class KpiValue:
    """One KPI figure. `value` is None when there is nothing to count (no data)."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    exclusions: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def has_data(self) -> bool:
        return self.value is not None


def ratio(
    numerator: float,
    denominator: float,
    *,
    exclusions: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    note: str = "",
) -> KpiValue:
    """numerator / denominator × 100 %; no value (not 0 %) when the denominator is 0."""
    value = None if denominator == 0 else numerator / denominator * 100.0
    return KpiValue(
        value, numerator, denominator, tuple(exclusions), dict(defaults or {}), note or ""
    )


def count(
    n: float, *, exclusions: Sequence[str] = (), defaults: Mapping[str, Any] | None = None
) -> KpiValue:
    """A count KPI (points remediated, dark segments): the count is the value."""
    return KpiValue(float(n), float(n), None, tuple(exclusions), dict(defaults or {}))


@dataclass(frozen=True)
class Scope:
    """Where a KPI is computed: the whole city, a district class, or one district.
    `districts` is the list of district codes it covers (None = all)."""

    name: str  # 'city', 'central', 'county' or a district code
    districts: tuple[str, ...] | None = None


# compute(conn, as_of, scope, config) -> KpiValue; as_of is a local calendar day, the value
# is as it stood at that day's end.
Compute = Callable[[psycopg.Connection, date, Scope, Mapping[str, Any]], KpiValue]
# items(conn, as_of, scope, config) -> the list behind the KPI: one dict per asset, with the
# fields an operator needs to act (id, district, why it counts against the KPI).
Items = Callable[[psycopg.Connection, date, Scope, Mapping[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class KpiSpec:
    key: str  # 'manhole.defect_remediation_rate_baseline'
    area: str  # 'manhole'
    title_zh: str
    title_en: str
    unit: Unit
    better: Better
    section: str  # docs/domain.md section with the formula, e.g. '§2.6'
    compute: Compute
    items: Items | None = None
    # Configuration the formula reads, with the proposed default (docs/domain.md §7 gaps).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    # False: computed from ledgers (and alerts) only, never from readings or device status,
    # so the API's value cache (urbanwatch/plan/values.py) may keep it past the minute.
    reads_readings: bool = True
    # The counted input families it reads (urbanwatch/plan/values.py FAMILIES: 'registry',
    # 'manhole', 'waterlog', 'lighting', 'water', 'hazards', 'alerts'): an edit to another
    # family leaves its cached value in place. None: every family (never wrongly kept).
    # tests/test_plan_values.py computes each KPI under a role that may read only these.
    inputs: frozenset[str] | None = None


_REGISTRY: dict[str, KpiSpec] = {}


def register(spec: KpiSpec) -> KpiSpec:
    if spec.key in _REGISTRY and _REGISTRY[spec.key] is not spec:
        raise ValueError(f"KPI {spec.key!r} registered twice")
    _REGISTRY[spec.key] = spec
    return spec


def load_all() -> dict[str, KpiSpec]:
    """Import every KPI area module of this package and return the registry."""
    package = importlib.import_module("urbanwatch.kpi")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "cli", "snapshot", "status"):
            importlib.import_module(f"urbanwatch.kpi.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def get(key: str) -> KpiSpec | None:
    return load_all().get(key)


def effective_config(spec: KpiSpec, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """The spec's defaults with the configured overrides for its keys applied."""
    config = dict(spec.defaults)
    for name, value in (overrides or {}).items():
        if name in config:
            config[name] = value
    return config
