"""The nightly DMA rules on a timer inside `urbanwatch alerts run` (docs/alerts.md "Daily MNF
rules"): each local night is evaluated once, `daily_delay_s` after its window ends (05:00
local), across restarts and however many engine processes run.

A round, in one transaction per night: take the daily run's advisory lock (an engine that
cannot, leaves the round to the one that holds it), read the newest night done
(dma_daily_runs), evaluate the next due night with `run_night` and write its row. A night
whose evaluation fails (the database went away) is rolled back whole and retried later; the
nights missed while no engine ran are caught up in order (daily.nights_due)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime

import psycopg

from alerts.detectors import daily
from alerts.detectors.cli import run_night
from urbanwatch import db
from urbanwatch.queries import detectors as q

logger = logging.getLogger("alerts.daily")
POLL_S = 600.0  # look again at least this often (a clock step, another engine's failure)
RETRY_S = 30.0  # after a failed round (database down)


def run_due(
    conn: psycopg.Connection, now: datetime, delay_s: float, done_by: str
) -> list[date] | None:
    """Evaluate every night due at `now` that no engine has done yet, oldest first; the
    nights this call evaluated, or None when another engine holds the daily lock."""
    evaluated: list[date] = []
    while True:
        if not q.try_daily_lock(conn):
            conn.rollback()
            return evaluated or None
        due = daily.nights_due(now, q.last_daily_run(conn), delay_s)
        if not due:
            conn.commit()
            return evaluated
        results = run_night(conn, due[0])
        q.save_daily_run(conn, due[0], len(results), done_by)
        conn.commit()
        logger.info("daily MNF rules: night %s evaluated for %d DMAs", due[0], len(results))
        evaluated.append(due[0])


class NightlyTimer(threading.Thread):
    """Runs `run_due` now and whenever the next night falls due, until `stop` is set."""

    def __init__(
        self,
        database_url: str,
        delay_s: float,
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        super().__init__(name="alerts-daily", daemon=True)
        self.database_url, self.delay_s, self.stop, self.clock = database_url, delay_s, stop, clock
        self.done_by = f"{socket.gethostname()}:{os.getpid()}"
        self.rounds = 0  # completed rounds (tests wait on it)

    def run(self) -> None:
        while not self.stop.is_set():
            wait = self.round()
            self.stop.wait(wait)

    def round(self) -> float:
        """One round; the seconds until the next."""
        try:
            with db.connect(self.database_url, name="urbanwatch-alerts-daily") as conn:
                done = run_due(conn, self.clock(), self.delay_s, self.done_by)
        except (psycopg.Error, OSError) as exc:
            logger.error("daily MNF rules: round failed, again in %.0f s: %s", RETRY_S, exc)
            return RETRY_S
        except Exception:  # a bug must not end the timer of a long-running engine
            logger.exception("daily MNF rules: round failed, again in %.0f s", RETRY_S)
            return RETRY_S
        self.rounds += 1
        now = self.clock()
        due = daily.next_due(now, self.delay_s)
        if done is None:  # look again soon: the other engine may fail half way
            logger.info("daily MNF rules: another engine is evaluating; looking again later")
            return RETRY_S
        if not done:
            logger.info("daily MNF rules: nothing due; the next night at %s", due.isoformat())
        return max(1.0, min(POLL_S, (due - now).total_seconds()))
