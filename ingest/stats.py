"""Counters for the worker's periodic rate line and its final totals."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from ingest.store import WriteResult

logger = logging.getLogger("ingest")

_KEYS = ("messages", "readings", "duplicates", "dead_letters", "status", "ignored")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = dict.fromkeys(_KEYS, 0)
        self._window = dict.fromkeys(_KEYS, 0)
        self._window_start = time.monotonic()
        self._max_lag_s = 0.0

    def record(
        self, messages: int, result: WriteResult, oldest_received_at: datetime, ignored: int = 0
    ) -> None:
        """One committed batch; lag is commit time minus the oldest message's arrival.
        `ignored`: messages that were not ours (acknowledged, not stored)."""
        lag = (datetime.now(UTC) - oldest_received_at).total_seconds()
        values = (
            messages,
            result.readings,
            result.duplicates,
            result.dead_letters,
            result.status,
            ignored,
        )
        with self._lock:
            for key, value in zip(_KEYS, values, strict=True):
                self._total[key] += value
                self._window[key] += value
            self._max_lag_s = max(self._max_lag_s, lag)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._total)

    def maybe_log(self, now: float, queued: int, interval_s: float) -> None:
        with self._lock:
            elapsed = now - self._window_start
            if elapsed < interval_s:
                return
            w, lag = self._window, self._max_lag_s
            self._window = dict.fromkeys(_KEYS, 0)
            self._window_start, self._max_lag_s = now, 0.0
        logger.info(
            "%.0f msg/s received, %.0f readings/s written, %d duplicate(s), %d dead-lettered, "
            "%d status; %d queued, max lag %.2f s",
            w["messages"] / elapsed,
            w["readings"] / elapsed,
            w["duplicates"],
            w["dead_letters"],
            w["status"],
            queued,
            lag,
        )
        if w["ignored"]:
            logger.warning(
                "%d message(s) on topics that are not this deployment's (an old subscription "
                "of a resumed session) were acknowledged and not stored",
                w["ignored"],
            )
