"""Retry with backoff while the database is unreachable: one helper for every long-running
process (ingest's writer, the alert engine, the notification outbox).

Only connection trouble (`psycopg.OperationalError`) is retried; any other error is the
caller's to handle. Between attempts the caller's connection is reset, so the next attempt
reconnects; the wait doubles up to a cap and is cut short when the process is stopping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import psycopg

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0

    def __post_init__(self) -> None:
        self.delay = self.initial_s

    def next(self) -> float:
        """The wait before the next attempt; each call doubles the following one."""
        delay = self.delay
        self.delay = min(self.delay * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.delay = self.initial_s


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def retry_database(
    attempt: Callable[[], T],
    *,
    reset: Callable[[], None],
    stopping: threading.Event,
    backoff: Backoff,
    holding: str = "",
) -> T | None:
    """`attempt()` until it does not raise OperationalError; None if the process is stopping
    while the database is still unreachable. `holding` says what waits meanwhile (logged)."""
    backoff.reset()
    while True:
        try:
            return attempt()
        except psycopg.OperationalError as exc:
            reset()
            if stopping.is_set():
                logger.error(
                    "database unavailable while stopping%s", f"; {holding}" if holding else ""
                )
                return None
            delay = backoff.next()
            logger.warning(
                "database unavailable (%s)%s; retrying in %.1f s",
                first_line(exc),
                f"; holding {holding}" if holding else "",
                delay,
            )
            stopping.wait(delay)
