"""Water-supply KPI formulas (docs/domain.md §5.2, §5.3, §5.7), pure: CJJ 92-2016 as revised in
2018. R_WL = (Qs − Qa)/Qs; R_BL = R_WL − (R1 + R2 + R3 + R4); the regional figure is
supply-weighted. The shell that gathers the inputs and registers the KPIs is kpi/water.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from urbanwatch.kpi.base import KpiValue, ratio

R1_METER_GAP = 0.08  # master vs household meter difference, CJJ 92-2016 [S*]
R2_SLOPE, R2_A0, R2_CLAMP = 0.99, 0.0693, 3.0  # regression on 2,509 utility-years [S*]
R3_BANDS = ((0.35, 0.0), (0.55, 0.5), (0.75, 1.0))  # (≤ MPa, %); above the last: 2 % [S*]
R3_TOP = 2.0
R4_DEPTH_M, R4_VALUE = 1.4, 1.0  # "else 0" is implied, not stated (docs/domain.md §7.9)
DEFAULTS: dict[str, Any] = {"missing_correction": "zero"}
PRESSURE_DEFAULTS: dict[str, Any] = {"min_mpa": 0.14, "max_mpa": 0.6}  # §5.4 [S] / §5.6 [P]


def r1(household_m3: float, supply_m3: float) -> float:
    return R1_METER_GAP * household_m3 / supply_m3 * 100.0


def r2(pipe_km: float, supply_m3: float) -> float:
    """0.99·(L/Qs − 0.0693) in %, Qs in 万m³, clamped to [−3 %, +3 %]."""
    a = pipe_km / (supply_m3 / 1e4)
    return max(-R2_CLAMP, min(R2_CLAMP, R2_SLOPE * (a - R2_A0) * 100.0))


def r3(pressure_mpa: float) -> float:
    for upper, value in R3_BANDS:
        if pressure_mpa <= upper:
            return value
    return R3_TOP


def r4(frost_depth_m: float) -> float:
    return R4_VALUE if frost_depth_m > R4_DEPTH_M else 0.0


@dataclass(frozen=True)
class Balance:
    """A supply unit's (or a DMA's) water balance over a period, m³."""

    unit: str
    supply_m3: float
    authorised_m3: float  # Qa = billed + free
    billed_m3: float
    household_m3: float | None = None
    pipe_km_dn75: float | None = None
    pressure_mpa: float | None = None
    frost_depth_m: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict)


def corrections(b: Balance) -> tuple[dict[str, float], list[str]]:
    """R1–R4 in %, and the terms whose input is missing (counted 0)."""
    terms: dict[str, float] = {}
    missing = []
    inputs = {
        "R1": (b.household_m3, lambda v: r1(v, b.supply_m3)),
        "R2": (b.pipe_km_dn75, lambda v: r2(v, b.supply_m3)),
        "R3": (b.pressure_mpa, r3),
        "R4": (b.frost_depth_m, r4),
    }
    for name, (value, term) in inputs.items():
        if value is None or b.supply_m3 <= 0:
            missing.append(name)
            terms[name] = 0.0
        else:
            terms[name] = term(value)
    return terms, missing


def loss_rate_wl(b: Balance) -> KpiValue:
    return ratio(b.supply_m3 - b.authorised_m3, b.supply_m3, note=_sources(b))


def loss_rate_bl(b: Balance, config: Mapping[str, Any]) -> KpiValue:
    """R_BL = R_WL − (R1 + R2 + R3 + R4); numerator is the corrected loss volume."""
    if b.supply_m3 <= 0:
        return KpiValue(None, None, b.supply_m3, defaults=dict(config), note=_sources(b))
    terms, missing = corrections(b)
    if missing and config.get("missing_correction") == "no_data":
        return KpiValue(None, None, b.supply_m3, defaults=dict(config), note=_missing(missing))
    wl = (b.supply_m3 - b.authorised_m3) / b.supply_m3 * 100.0
    bl = wl - sum(terms.values())
    parts = ", ".join(f"{k} {v:.2f} %" for k, v in terms.items())
    note = f"R_WL {wl:.2f} %; {parts}" + (f"; {_missing(missing)}" if missing else "")
    note += f"; {_sources(b)}" if b.sources else ""
    return KpiValue(bl, bl * b.supply_m3 / 100.0, b.supply_m3, defaults=dict(config), note=note)


def supply_weighted(values: Sequence[tuple[str, KpiValue]]) -> KpiValue:
    """Σ R_i·Qs_i / Σ Qs_i over the units with a value; the others are exclusions."""
    counted = [(u, v) for u, v in values if v.value is not None and v.denominator]
    excluded = [u for u, v in values if v.value is None or not v.denominator]
    qs = sum(float(v.denominator or 0) for _, v in counted)
    num = sum(float(v.value or 0) * float(v.denominator or 0) / 100.0 for _, v in counted)
    return ratio(num, qs, exclusions=[f"{u} (no data)" for u in excluded])


def nrw_rate(b: Balance) -> KpiValue:
    return ratio(b.supply_m3 - b.billed_m3, b.supply_m3, note=_sources(b))


def ili(
    carl_l_day: float,
    mains_km: float | None,
    connections: int | None,
    private_km: float | None,
    pressure_m: float | None,
) -> KpiValue:
    """CARL / UARL, UARL (L/day) = (18·Lm + 0.8·Nc + 25·Lp)·P (§5.3). No value without Lm,
    Nc or P (Lp missing counts 0, noted)."""
    if mains_km is None or connections is None or pressure_m is None:
        return KpiValue(None, note="ILI needs mains km, connections and pressure")
    uarl = (18 * mains_km + 0.8 * connections + 25 * (private_km or 0.0)) * pressure_m
    if uarl <= 0:
        return KpiValue(None, carl_l_day, uarl)
    note = "" if private_km is not None else "Lp missing, counted 0"
    return KpiValue(carl_l_day / uarl, carl_l_day, uarl, note=note)


def pressure_pass_rate(in_band: int, samples: int, config: Mapping[str, Any]) -> KpiValue:
    return ratio(in_band, samples, defaults=config)


def _missing(missing: Sequence[str]) -> str:
    return f"no input for {', '.join(missing)} (counted 0)"


def _sources(b: Balance) -> str:
    return ", ".join(f"{k} from {v}" for k, v in sorted(b.sources.items()))
