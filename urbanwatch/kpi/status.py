"""Status of a target against its deadline (pure): met / on track / at risk / missed, with a
projection to the deadline from the recent trend and the reasoning in words.

- met: the value meets the line (for a deadline in the past: the value on the deadline did).
- missed: the deadline has passed and the value on it did not meet the line; for an ongoing
  target, the value does not meet the line now.
- on track: the least-squares trend over the last TREND_DAYS days, carried to the deadline,
  meets the line.
- at risk: it does not, or there is not enough history to draw a trend.
- no data: no value (nothing to count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

Status = Literal["met", "on_track", "at_risk", "missed", "no_data"]
# A month of daily snapshots shows a trend; three months smooth out one big batch of work.
TREND_DAYS = 90
MIN_POINTS = 2
DAYS_PER_MONTH = 30.4375
LABELS = {
    "met": ("已达标", "met"),
    "on_track": ("进度正常", "on track"),
    "at_risk": ("存在风险", "at risk"),
    "missed": ("未达标", "missed"),
    "no_data": ("暂无数据", "no data"),
}


@dataclass(frozen=True)
class Assessment:
    status: Status
    value: float | None
    projection: float | None  # the trend's value on the deadline
    trend_per_month: float | None
    required_per_month: float | None  # the pace that would meet the line on the deadline
    reasoning: str


def meets(value: float, comparator: str, target: float) -> bool:
    return value >= target if comparator == ">=" else value <= target


def trend_per_day(history: Sequence[tuple[date, float]]) -> float | None:
    """Least-squares slope of value over days; None with fewer than MIN_POINTS days."""
    if len({d for d, _ in history}) < MIN_POINTS:
        return None
    xs = [d.toordinal() for d, _ in history]
    ys = [v for _, v in history]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def assess(
    comparator: str,
    target: float,
    deadline: date | None,
    as_of: date,
    value: float | None,
    history: Sequence[tuple[date, float | None]],
) -> Assessment:
    """`history`: (day, value) snapshots up to as_of, any order; None values are skipped."""
    points = sorted((d, v) for d, v in history if v is not None and d <= as_of)
    line = f"{comparator} {target:g}"
    if deadline is not None and as_of > deadline:
        on_deadline = [v for d, v in points if d <= deadline]
        final = on_deadline[-1] if on_deadline else None
        if final is None:
            return Assessment("no_data", value, None, None, None,
                              f"no value on or before the deadline {deadline}")  # fmt: skip
        if meets(final, comparator, target):
            return Assessment("met", value, final, None, None,
                              f"{final:g} on the deadline {deadline} met {line}")  # fmt: skip
        return Assessment("missed", value, final, None, None,
                          f"deadline {deadline} passed at {final:g}, short of {line}")  # fmt: skip
    if value is None:
        return Assessment("no_data", None, None, None, None, "nothing to count yet (no data)")
    if meets(value, comparator, target):
        when = f"before the deadline {deadline}" if deadline else "(standing target)"
        return Assessment("met", value, value, None, None, f"{value:g} meets {line} {when}")
    if deadline is None:
        return Assessment("missed", value, None, None, None,
                          f"{value:g} does not meet the standing target {line}")  # fmt: skip
    recent = [(d, v) for d, v in points if (as_of - d).days <= TREND_DAYS]
    slope = trend_per_day(recent)
    days_left = (deadline - as_of).days
    required = (target - value) / max(days_left, 1) * DAYS_PER_MONTH
    if slope is None:
        return Assessment("at_risk", value, None, None, required,
                          f"{value:g}, not {line} yet, and too little history for a trend; "
                          f"needs {required:+.2f}/month to the deadline {deadline}")  # fmt: skip
    projection = value + slope * days_left
    per_month = slope * DAYS_PER_MONTH
    status: Status = "on_track" if meets(projection, comparator, target) else "at_risk"
    verdict = "meets" if status == "on_track" else "falls short of"
    return Assessment(
        status, value, projection, per_month, required,
        f"{value:g} now; trend {per_month:+.2f}/month over the last {TREND_DAYS} days projects "
        f"{projection:.1f} on {deadline}, which {verdict} {line}; needs {required:+.2f}/month",
    )  # fmt: skip
