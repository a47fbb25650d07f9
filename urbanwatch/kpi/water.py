"""Water-supply KPIs (docs/domain.md §5.2, §5.3, §5.7): CJJ 92-2016 as revised in 2018.

R_WL = (Qs − Qa)/Qs; R_BL = R_WL − (R1 + R2 + R3 + R4). A supply unit is a district (its
DMAs' volumes summed); the central city and the county-level cities are supply-weighted over
their districts (§5.2 item 5), and so is the city. Each DMA's figure is in the list behind the
KPI. The official figure is the calendar year (to date); `_rolling12` is the 12 months to
the day. Volumes come from the DMA's meters where every meter of the role has readings, else
from the imported ledger; the note says which. A correction whose input is missing counts 0
and the note says so (configurable: `missing_correction: no_data`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, register
from urbanwatch.kpi.water_formulas import (
    DEFAULTS,
    PRESSURE_DEFAULTS,
    Balance,
    corrections,
    ili,
    loss_rate_bl,
    loss_rate_wl,
    nrw_rate,
    pressure_pass_rate,
    supply_weighted,
)
from urbanwatch.queries import water_ledger as q

LOCAL = ZoneInfo("Asia/Shanghai")
FLOW = ("inlet", "outlet")


# --- periods and balances from the ledger ------------------------------------------------


def period(as_of: date, rolling: bool) -> tuple[date, date]:
    """First and last day: the calendar year to as_of, or the 12 months to as_of."""
    if not rolling:
        return date(as_of.year, 1, 1), as_of
    try:
        first = as_of.replace(year=as_of.year - 1) + timedelta(days=1)
    except ValueError:  # 29 February
        first = date(as_of.year - 1, 3, 1)
    return first, as_of


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL)


def _sum(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _measured(vols: Sequence[q.MeterVolume], roles: tuple[str, ...]) -> bool:
    return bool(vols) and all(v.volume_m3 is not None for v in vols if v.role in roles)


def metered(vols: Sequence[q.MeterVolume]) -> list[q.MeterVolume]:
    """The meters whose role the DMA's balance reads from meters (see dma_balance)."""
    flow = [v for v in vols if v.role in ("inlet", "outlet")]
    out = flow if any(v.role == "inlet" for v in flow) and _measured(flow, FLOW) else []
    for role in ("customer", "household"):
        mine = [v for v in vols if v.role == role]
        out += mine if _measured(mine, (role,)) else []
    return out


def common_span(
    vols: Sequence[q.MeterVolume], start: datetime, end: datetime
) -> tuple[datetime, datetime] | None:
    """The span every metered meter of a DMA covers: inflow and consumption are compared over
    the same instants, whatever each meter's reporting phase (an hourly meter's first reading
    may come up to an hour after an inlet's). A meter with readings on both sides of the
    period's start (end) covers it from the start (to the end) itself."""
    firsts = [start if v.before_start else v.first_ts for v in vols if v.first_ts is not None]
    lasts = [end if v.after_end else v.last_ts for v in vols if v.last_ts is not None]
    if not firsts or len(firsts) != len(vols) or len(lasts) != len(vols):
        return None
    lo, hi = max(firsts), min(lasts)
    return (lo, hi) if hi > lo else None


def over_span(
    vols: Sequence[q.MeterVolume],
    span: tuple[datetime, datetime],
    registers: Mapping[tuple[str, datetime], float | None],
) -> list[q.MeterVolume]:
    """The meters' volumes over the span, from their registers interpolated at its ends."""
    out = []
    for v in vols:
        a, b = registers.get((v.device_id, span[0])), registers.get((v.device_id, span[1]))
        volume = None if a is None or b is None else b - a
        out.append(v.model_copy(update={"volume_m3": volume, "first_ts": span[0],
                                        "last_ts": span[1]}))  # fmt: skip
    return out


def dma_balance(
    dma: q.DmaFact,
    vols: Sequence[q.MeterVolume],
    imported: Sequence[q.VolumeFact],
    year: q.SupplyYearFact | None,
) -> Balance | None:
    """A DMA's balance: meters where every meter of the role has readings, else imported."""
    sources: dict[str, str] = {}
    supply: float | None
    billed: float | None
    free: float | None
    household: float | None
    flow = [v for v in vols if v.role in ("inlet", "outlet")]
    if any(v.role == "inlet" for v in flow) and _measured(flow, FLOW):
        supply = sum((v.volume_m3 or 0) * (1 if v.role == "inlet" else -1) for v in flow)
        sources["supply"] = "meters"
    else:
        supply, sources["supply"] = _sum([i.supply_m3 for i in imported]), "imported"
    customers = [v for v in vols if v.role == "customer"]
    if _measured(customers, ("customer",)):
        billed = sum(v.volume_m3 or 0 for v in customers if v.billed)
        free = sum(v.volume_m3 or 0 for v in customers if not v.billed)
        sources["billed"] = "meters"
    else:
        billed, free = _sum([i.billed_m3 for i in imported]), _sum([i.free_m3 for i in imported])
        sources["billed"] = "imported"
    households = [v for v in vols if v.role == "household"]
    if _measured(households, ("household",)):
        household, sources["household"] = sum(v.volume_m3 or 0 for v in households), "meters"
    else:
        household, sources["household"] = _sum([i.household_m3 for i in imported]), "imported"
        if household is None:
            household, sources["household"] = 0.0, "none recorded"
    if supply is None or billed is None:
        return None
    return Balance(
        dma.dma_id, supply, billed + (free or 0.0), billed, household, dma.pipe_km_dn75,
        year.plant_outlet_pressure_mpa if year else None,
        year.max_frost_depth_m if year else None, sources,
    )  # fmt: skip


def district_balance(
    district: str, parts: Sequence[tuple[q.DmaFact, Balance]], year: q.SupplyYearFact | None
) -> Balance | None:
    """A district as a supply unit: its DMAs' volumes summed; L from the supply year if
    given, else the DMAs' sum (none if a DMA lacks it)."""
    if not parts:
        return None
    pipes = [b.pipe_km_dn75 for _, b in parts]
    pipe = year.pipe_km_dn75 if year and year.pipe_km_dn75 is not None else None
    if pipe is None and all(p is not None for p in pipes):
        pipe = sum(p or 0.0 for p in pipes)
    sources: dict[str, str] = {}
    for key in ("supply", "billed", "household"):
        kinds = sorted({b.sources.get(key, "") for _, b in parts})
        sources[key] = "/".join(kinds)
    return Balance(
        district,
        sum(b.supply_m3 for _, b in parts),
        sum(b.authorised_m3 for _, b in parts),
        sum(b.billed_m3 for _, b in parts),
        sum(b.household_m3 or 0.0 for _, b in parts),
        pipe,
        year.plant_outlet_pressure_mpa if year else None,
        year.max_frost_depth_m if year else None,
        sources,
    )


@dataclass(frozen=True)
class Gathered:
    dmas: dict[str, tuple[q.DmaFact, Balance | None]]
    districts: dict[str, Balance]
    days: int


def gather(conn: psycopg.Connection, as_of: date, scope: Scope, rolling: bool) -> Gathered:
    first, last = period(as_of, rolling)
    start, end = local_midnight(first), local_midnight(last + timedelta(days=1))
    facts = q.dmas(conn, scope.districts)
    vols = q.meter_volumes(conn, scope.districts, start, end)
    imported = q.imported_volumes(conn, scope.districts, first, last)
    years = q.supply_years(conn, scope.districts, last.year)
    spans = {}
    for dma in facts:
        span = common_span(metered([v for v in vols if v.dma_id == dma.dma_id]), start, end)
        if span is not None:
            spans[dma.dma_id] = span
    probes = [(v.device_id, t) for v in vols if v.dma_id in spans for t in spans[v.dma_id]]
    registers = q.registers_at(conn, probes)
    out: dict[str, tuple[q.DmaFact, Balance | None]] = {}
    for dma in facts:
        mine = [v for v in vols if v.dma_id == dma.dma_id]
        if dma.dma_id in spans:
            mine = over_span(mine, spans[dma.dma_id], registers)
        rows = [i for i in imported if i.dma_id == dma.dma_id]
        out[dma.dma_id] = (dma, dma_balance(dma, mine, rows, years.get(dma.district)))
    districts: dict[str, Balance] = {}
    for code in sorted({d.district for d in facts}):
        parts = [(d, b) for d, b in out.values() if d.district == code and b is not None]
        balance = district_balance(code, parts, years.get(code))
        if balance is not None:
            districts[code] = balance
    return Gathered(out, districts, (last - first).days + 1)


def _single(scope: Scope) -> bool:
    return scope.districts is not None and scope.districts == (scope.name,)


def _rate(kind: str, rolling: bool) -> Any:
    def compute(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        g = gather(conn, as_of, scope, rolling)
        if kind == "R_BL":
            units = [(c, loss_rate_bl(b, config)) for c, b in g.districts.items()]
            if _single(scope):
                return units[0][1] if units else KpiValue(None, defaults=dict(config))
            return supply_weighted(units)
        total = Balance(
            scope.name,
            sum(b.supply_m3 for b in g.districts.values()),
            sum(b.authorised_m3 for b in g.districts.values()),
            sum(b.billed_m3 for b in g.districts.values()),
        )
        return loss_rate_wl(total) if kind == "R_WL" else nrw_rate(total)

    return compute


def _dma_items(rolling: bool) -> Any:
    def items(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        g = gather(conn, as_of, scope, rolling)
        out = []
        for dma_id, (dma, b) in g.dmas.items():
            row: dict[str, Any] = {"dma_id": dma_id, "district": dma.district}
            if b is None:
                out.append(row | {"R_BL": None, "note": "no supply or billed volume"})
                continue
            terms, _ = corrections(b)
            wl, bl = loss_rate_wl(b).value, loss_rate_bl(b, config).value
            volumes = {"supply_m3": b.supply_m3, "authorised_m3": b.authorised_m3}
            out.append(row | volumes | {"R_WL": wl, **terms, "R_BL": bl, "sources": b.sources})
        return sorted(out, key=lambda r: -(r["R_BL"] if r["R_BL"] is not None else -1e9))

    return items


def _ili(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> KpiValue:
    """ILI over the scope's DMAs for the year to date: CARL = Qs − Qa − apparent losses."""
    g = gather(conn, as_of, scope, rolling=False)
    first, last = period(as_of, rolling=False)
    apparent = {i.dma_id: i.apparent_loss_m3 or 0.0
                for i in q.imported_volumes(conn, scope.districts, first, last)}  # fmt: skip
    carl_m3, uarl, lacking = 0.0, 0.0, []
    for dma_id, (dma, b) in g.dmas.items():
        if b is None:
            continue
        one = ili(1.0, dma.mains_km, dma.service_connections, dma.private_pipe_km,
                  dma.avg_pressure_m)  # fmt: skip
        if one.denominator is None or one.value is None:
            lacking.append(dma_id)
            continue
        carl_m3 += b.supply_m3 - b.authorised_m3 - apparent.get(dma_id, 0.0)
        uarl += float(one.denominator)
    if lacking or uarl == 0:
        return KpiValue(
            None,
            exclusions=tuple(f"{d} (no Lm, Nc or P)" for d in lacking),
            note="ILI needs every DMA's mains km, connections and pressure",
        )
    carl = carl_m3 * 1000.0 / g.days
    return KpiValue(carl / uarl, carl, uarl, note="CARL and UARL in L/day")


def _pressure(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> KpiValue:
    """Pressure pass rate for the month to as_of: in-band samples / all samples."""
    start = local_midnight(as_of.replace(day=1))
    end = local_midnight(as_of + timedelta(days=1))
    lo, hi = float(config["min_mpa"]), float(config["max_mpa"])
    facts = q.pressure_samples(conn, scope.districts, start, end, lo, hi)
    return pressure_pass_rate(sum(f.in_band for f in facts), sum(f.samples for f in facts), config)


def _spec(key: str, zh: str, en: str, compute: Any, **kw: Any) -> None:
    # Counted families (KpiSpec.inputs): the water ledgers and the districts they join.
    kw.setdefault("inputs", frozenset({"water", "registry"}))
    register(KpiSpec(key, "water", zh, en, kw.pop("unit", "%"), kw.pop("better", "lower"),
                     kw.pop("section", "§5.2"), compute, **kw))  # fmt: skip


for _suffix, _rolling, _zh in (("", False, "年度"), ("_rolling12", True, "滚动12个月")):
    _spec(f"water.loss_rate_R_BL{_suffix}", f"漏损率(修正后,{_zh})",
          f"corrected loss rate R_BL ({'rolling 12 months' if _rolling else 'year'})",
          _rate("R_BL", _rolling), items=_dma_items(_rolling), defaults=DEFAULTS)  # fmt: skip
    _spec(f"water.loss_rate_R_WL{_suffix}", f"综合漏损率({_zh})",
          f"gross loss rate R_WL ({'rolling 12 months' if _rolling else 'year'})",
          _rate("R_WL", _rolling), items=_dma_items(_rolling))  # fmt: skip
_spec("water.nrw_rate", "产销差率(年度)", "non-revenue water (year)", _rate("NRW", False),
      section="§5.1")  # fmt: skip
_spec("water.ili", "基础设施漏损指数", "infrastructure leakage index", _ili, unit="ratio",
      section="§5.3")  # fmt: skip
_spec("water.pressure_pass_rate", "管网压力合格率(月)", "pressure pass rate (month)", _pressure,
      better="higher", section="§5.4", defaults=PRESSURE_DEFAULTS)  # fmt: skip
