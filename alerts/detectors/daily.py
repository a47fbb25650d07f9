"""The nightly DMA rules (docs/domain.md §5.5), pure: the night's MNF from 15-min net-inflow
buckets, its baseline, data completeness, and DMA_MNF_RISE / DMA_MNF_STEP / DMA_HIGH_LEAKAGE.
`urbanwatch alerts daily` (alerts/detectors/cli.py) and the engine's timer (nightly.py) feed it
from the database and store what it returns; running it again for a night gives the same rows
and alerts. `nights_due` says which nights a timer evaluates at a given time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from statistics import median
from typing import Any

LOCAL = timezone(timedelta(hours=8), "Asia/Shanghai")
BUCKET_S = 900
WINDOW = (time(0, 0), time(5, 0))  # the night window, local (§5.5 default)
METHOD = "min of the 1-h rolling mean of net DMA inflow, 15-min buckets, 00:00-05:00 local"
VALID_SHARE = 0.9  # [P] a night with < 90 % of the expected data is invalid
BASELINE_NIGHTS, BASELINE_MIN = 14, 7  # p20 of the previous 14 valid nights; at least 7 [P]
HIGH_LEAKAGE_DAYS, HIGH_LEAKAGE_MIN, HIGH_LEAKAGE_RATIO = 30, 7, 0.5
# After downtime the timer catches up at most this many missed nights (a baseline's worth;
# older ones are `urbanwatch alerts daily --date D`).
CATCH_UP_NIGHTS = BASELINE_NIGHTS

RULES = {
    "DMA_MNF_STEP": ("alarm", "夜间最小流量突增(疑似爆管/大漏) MNF step"),
    "DMA_MNF_RISE": ("warning", "夜间最小流量上升(疑似新增漏点) MNF rise"),
    "DMA_HIGH_LEAKAGE": ("info", "高漏损分区 High-leakage DMA"),
}


def night_window(night: date) -> tuple[datetime, datetime]:
    return (datetime.combine(night, WINDOW[0], LOCAL), datetime.combine(night, WINDOW[1], LOCAL))


def last_complete_night(now: datetime) -> date:
    local = now.astimezone(LOCAL)
    return local.date() if local.time() >= WINDOW[1] else local.date() - timedelta(days=1)


def nights_due(now: datetime, done: date | None, delay_s: float) -> list[date]:
    """The nights a timer evaluates at `now`, oldest first: each ended (05:00 local) at least
    `delay_s` ago and comes after `done`, the newest one already evaluated. Without one (a
    first start) only the newest; after downtime at most CATCH_UP_NIGHTS."""
    latest = last_complete_night(now - timedelta(seconds=delay_s))
    first = latest
    if done is not None:
        first = max(done + timedelta(days=1), latest - timedelta(days=CATCH_UP_NIGHTS - 1))
    return [first + timedelta(days=i) for i in range((latest - first).days + 1)]


def next_due(now: datetime, delay_s: float) -> datetime:
    """When the night after the newest due one becomes due (its end + `delay_s`)."""
    latest = last_complete_night(now - timedelta(seconds=delay_s))
    return night_window(latest + timedelta(days=1))[1] + timedelta(seconds=delay_s)


@dataclass(frozen=True)
class Night:
    mnf: float | None
    mnf_at: datetime | None
    completeness: float
    valid: bool


@dataclass(frozen=True)
class Past:
    """A stored earlier night of the same DMA."""

    night: date
    mnf: float | None
    valid: bool
    baseline: float | None
    adf: float | None
    flagged: bool


def minimum_night_flow(
    buckets: Sequence[tuple[datetime, float, int]], meters: int, start: datetime, end: datetime
) -> Night:
    """(bucket start, net inflow m³/h, meters in it): a bucket counts when every inlet and
    outlet reported in it; the MNF is the lowest mean of 4 consecutive complete buckets."""
    expected = int((end - start).total_seconds() // BUCKET_S)
    complete = {b: net for b, net, n in buckets if n >= meters and start <= b < end}
    share = len(complete) / expected if expected else 0.0
    best: tuple[float, datetime] | None = None
    for b in sorted(complete):
        hour = [b + timedelta(seconds=BUCKET_S * i) for i in range(4)]
        if all(h in complete for h in hour):
            mean = sum(complete[h] for h in hour) / 4
            if best is None or mean < best[0]:
                best = (mean, b)
    return Night(
        None if best is None else round(best[0], 3),
        None if best is None else best[1],
        round(share, 3),
        share >= VALID_SHARE and best is not None,
    )


def average_daily_flow(buckets: Sequence[tuple[datetime, float, int]], meters: int) -> float | None:
    values = [net for _b, net, n in buckets if n >= meters]
    return round(sum(values) / len(values), 3) if values else None


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (as PostgreSQL's percentile_cont)."""
    s = sorted(values)
    pos = (len(s) - 1) * q
    low = int(pos)
    high = min(low + 1, len(s) - 1)
    return s[low] + (s[high] - s[low]) * (pos - low)


def baseline(past: Sequence[Past]) -> tuple[float | None, int]:
    usable = [p.mnf for p in sorted(past, key=lambda p: p.night) if p.valid and not p.flagged]
    nights = [m for m in usable if m is not None][-BASELINE_NIGHTS:]
    if len(nights) < BASELINE_MIN:
        return None, len(nights)
    return round(percentile(nights, 0.2), 3), len(nights)


def rise_exceeded(mnf: float | None, base: float | None, properties: int) -> bool:
    if mnf is None or base is None:
        return False
    return mnf > base * 1.2 and mnf - base > max(1.0, 0.0005 * properties)


def evaluate(
    night: date, tonight: Night, past: Sequence[Past], adf: float | None, properties: int
) -> tuple[float | None, int, dict[str, dict[str, Any]]]:
    """(baseline, nights in it, rule -> {fired, why}) for one DMA and night."""
    base, used = baseline(past)
    mnf = tonight.mnf if tonight.valid else None
    rules: dict[str, dict[str, Any]] = {}
    step = (
        mnf is not None
        and base is not None
        and (mnf > base * 1.5 or mnf - base > max(5.0, 0.002 * properties))
    )
    rules["DMA_MNF_STEP"] = {"fired": step, "why": _why(mnf, base, "×1.5 or +max(5, 2 L/h·props)")}
    yesterday = next((p for p in past if p.night == night - timedelta(days=1)), None)
    now_over = rise_exceeded(mnf, base, properties)
    before = (
        yesterday is not None
        and yesterday.valid
        and rise_exceeded(yesterday.mnf, yesterday.baseline, properties)
    )
    rules["DMA_MNF_RISE"] = {
        "fired": now_over and before,
        "exceeded": now_over,
        "why": _why(mnf, base, "×1.2 and +max(1, 0.5 L/h·props), 2 nights"),
    }
    month = [p for p in past if p.night > night - timedelta(days=HIGH_LEAKAGE_DAYS)]
    ratios = [p.mnf / p.adf for p in month if p.valid and p.mnf is not None and p.adf]
    if mnf is not None and adf:
        ratios.append(mnf / adf)
    high = len(ratios) >= HIGH_LEAKAGE_MIN and median(ratios) > HIGH_LEAKAGE_RATIO
    rules["DMA_HIGH_LEAKAGE"] = {
        "fired": high,
        "why": f"median MNF/ADF {median(ratios):.2f} over {len(ratios)} nights"
        if ratios
        else "no MNF/ADF",
    }
    return base, used, rules


def _why(mnf: float | None, base: float | None, test: str) -> str:
    if mnf is None:
        return "night invalid (incomplete data)"
    if base is None:
        return f"MNF {mnf} m³/h, no baseline yet (< {BASELINE_MIN} valid nights)"
    return f"MNF {mnf} m³/h vs baseline {base} m³/h: {test}"
