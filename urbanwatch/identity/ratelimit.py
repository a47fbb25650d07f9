"""How long a sign-in must wait, from the failures counted in the window. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Limit:
    max_failures: int
    window: timedelta


def retry_after(failures: list[datetime], limit: Limit, now: datetime) -> int | None:
    """Seconds until a new attempt is allowed, or None when it is allowed now. `failures` are
    the times of failed attempts (any order); once `max_failures` of them fall within the
    window, the next attempt waits until the oldest of the latest `max_failures` leaves it."""
    recent = sorted(t for t in failures if now - t < limit.window)
    if len(recent) < limit.max_failures:
        return None
    oldest_counted = recent[-limit.max_failures]
    wait = (oldest_counted + limit.window - now).total_seconds()
    return max(1, math.ceil(wait))
