"""Live runs: drive the simulation by the wall clock and publish what falls due.

Time: simulated time runs `speed` times faster than the wall clock but never passes it,
so every published `ts` is a real, past instant that ingest accepts (≤ 72 h old, never in
the future). An accelerated run therefore replays a window that ends now: it starts at
`start` (by default `now − (speed − 1) × duration`, so it reaches the present exactly when
the run ends) and, once it catches up with the wall clock, continues in real time.
With `behind` the run catches up with the wall clock minus that much instead and stays that
far behind it (`make demo` replays its first minutes fast, then runs at a night-time clock).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from tqdm import tqdm

from simulators.engine import Simulation
from simulators.publisher import Publisher
from simulators.sun import utc

logger = logging.getLogger(__name__)

TICK_S = 0.25  # longest sleep between looks at the clock
MAX_AGE_MS = 71 * 3_600_000  # stay inside ingest's 72 h acceptance window
OPEN_REPLAY_MS = 24 * 3_600_000  # an accelerated run without --duration replays the last day


@dataclass(frozen=True)
class SimClock:
    start_ms: int  # simulated time at wall time `wall0_ms`
    wall0_ms: int
    speed: float
    behind_ms: int = 0  # simulated time never passes the wall clock minus this

    def now(self, wall_ms: int) -> int:
        elapsed = int((wall_ms - self.wall0_ms) * self.speed)
        return min(self.start_ms + elapsed, wall_ms - self.behind_ms)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def plan_clock(
    speed: float,
    duration_s: float | None,
    start_ms: int | None,
    now_ms: int,
    behind_s: float = 0,
) -> SimClock:
    behind_ms = int(behind_s * 1000)
    target_ms = now_ms - behind_ms  # where the simulated clock catches up
    if start_ms is None:
        if duration_s:
            start_ms = target_ms - int((speed - 1) * duration_s * 1000)
        else:
            start_ms = target_ms - (OPEN_REPLAY_MS if speed > 1 else 0)
    if start_ms > target_ms:
        raise ValueError("the run would start after the clock it follows (wall clock − behind)")
    if now_ms - start_ms > MAX_AGE_MS:
        raise ValueError(
            "the replayed window starts more than 71 h ago, which ingest would "
            "refuse; use `simulate backfill` for older history"
        )
    return SimClock(start_ms, now_ms, speed, behind_ms)


def run_live(
    sim: Simulation,
    publisher: Publisher,
    clock: SimClock,
    *,
    duration_s: float | None,
    stop: threading.Event | None = None,
    progress: bool = True,
) -> int:
    """Publish until `duration_s` of wall time has passed (None: until stopped); returns the
    number of readings published. Ctrl-C (KeyboardInterrupt) stops it cleanly: the caller
    closes the publisher, which flushes and waits for acknowledgements."""
    stop = stop or threading.Event()
    end_wall = clock.wall0_ms + int(duration_s * 1000) if duration_s is not None else None
    with tqdm(unit=" readings", desc="simulate", disable=not progress, mininterval=1.0) as bar:
        last = 0
        while not stop.is_set():
            now = wall_ms()
            if end_wall is not None:
                now = min(now, end_wall)
            sim_now = clock.now(now)
            for device, payload in sim.advance(sim_now):
                publisher.add(device, payload)
            publisher.flush()
            bar.update(publisher.readings - last)
            last = publisher.readings
            bar.set_postfix_str(
                f"sim {utc(sim_now):%m-%d %H:%M:%S}Z acked {publisher.acked}/"
                f"{publisher.messages} msgs",
                refresh=False,
            )
            if end_wall is not None and now >= end_wall:
                break
            _sleep_until_due(sim, clock, stop)
    return publisher.readings


def _sleep_until_due(sim: Simulation, clock: SimClock, stop: threading.Event) -> None:
    due = sim.next_due()
    if due is None:
        stop.wait(TICK_S)
        return
    now = wall_ms()
    wait_s = max(0.0, (due - clock.now(now)) / 1000 / max(clock.speed, 1.0))
    stop.wait(min(wait_s, TICK_S))
