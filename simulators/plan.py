"""What a `simulate` command will do, worked out from its options before any work starts:
the simulated window, checked against the wall clock, and the lines `--dry-run` prints.
No I/O here; problems are `UsageError`s that name the options involved."""

from __future__ import annotations

from datetime import datetime

from simulators.fleet import fleet_size
from simulators.live import SimClock, plan_clock
from simulators.scenario import Scenario
from simulators.sun import DAY_MS, LOCAL, utc
from urbanwatch.errors import UsageError

OPEN_RUN_HORIZON_MS = 7 * DAY_MS  # background faults are planned this far for open runs


def epoch_ms(when: datetime, option: str) -> int:
    """Epoch milliseconds of an option's time; a time without an offset is Anyang's."""
    try:
        return int((when if when.tzinfo else when.replace(tzinfo=LOCAL)).timestamp() * 1000)
    except (OverflowError, ValueError):
        raise UsageError(f"{option}: {when.isoformat()} is out of range") from None


def run_window(
    start: datetime | None,
    speed: float,
    duration_s: float | None,
    now_ms: int,
    behind_s: float = 0,
) -> tuple[SimClock, int]:
    """The live run's clock and the simulated time it reaches at most: the run's end, or
    the fault-planning horizon of an open run (simulated time never passes the wall
    clock, so neither does the window by more than the run's own length)."""
    start_ms = None
    if start is not None:
        start_ms = epoch_ms(start, "--start")
        if start_ms > now_ms:
            raise UsageError(
                f"--start: {start.isoformat()} is in the future; a live run never passes "
                "the wall clock (docs/simulators.md)"
            )
        if start_ms > now_ms - behind_s * 1000:
            raise UsageError(
                f"--start: {start.isoformat()} is less than --behind {behind_s:g} s ago; "
                "a live run never passes the wall clock minus --behind"
            )
    try:
        clock = plan_clock(speed, duration_s, start_ms, now_ms, behind_s)
    except ValueError as exc:
        raise UsageError(f"--start/--speed/--duration/--behind: {exc}") from None
    span_ms = (duration_s or OPEN_RUN_HORIZON_MS / 1000) * 1000
    target_ms = clock.wall0_ms - clock.behind_ms
    return clock, int(min(clock.start_ms + span_ms * speed, target_ms + span_ms))


def backfill_window(end: datetime | None, days: float, now_ms: int) -> tuple[int, int]:
    """[start, end) of a backfill: `days` up to `end` (default now), all in the past."""
    end_ms = now_ms if end is None else epoch_ms(end, "--end")
    when = "now" if end is None else end.isoformat()
    if end_ms > now_ms:
        raise UsageError(f"--end: {when} is in the future; backfill writes history")
    start_ms = end_ms - int(days * DAY_MS)
    if start_ms < 0:
        raise UsageError(f"--days/--end: {days:g} days before {when} is before 1970-01-01")
    return start_ms, end_ms


def local_iso(t_ms: int) -> str:
    return utc(t_ms).astimezone(LOCAL).isoformat(timespec="seconds")


def describe_fleet(seed: int, scale: str) -> str:
    size = fleet_size(scale)
    return (
        f"fleet: seed {seed}, scale {scale}: about {size.total:,} devices ({size.covers:,} "
        f"covers, {size.lamps:,} lamps, {size.waterlog_points} waterlogging points, "
        f"{size.rain_gauges} rain gauges, {size.dmas} DMAs)"
    )


def describe_window(start_ms: int, end_ms: int) -> str:
    return f"window: {local_iso(start_ms)} to {local_iso(end_ms)}"


def describe_scenario(scenario: Scenario | None, background: bool) -> str:
    faults = "with background faults" if background else "no background faults"
    if scenario is None:
        return f"scenario: none, {faults}"
    if not scenario.background_faults:
        faults = "no background faults (the scenario turns them off)"
    return f"scenario: {scenario.name}, {len(scenario.events)} event(s), {faults}"
