"""The sun at Anyang moved to `urbanwatch/sun.py` (the alert engine needs it too); kept here
so the simulator's imports stay as they were."""

from urbanwatch.sun import (
    ANYANG,
    DAY_MS,
    LOCAL,
    LOCAL_OFFSET_MS,
    OFF_BEFORE_SUNRISE_MIN,
    ON_AFTER_SUNSET_MIN,
    LampClock,
    local_date,
    local_day,
    sun_times,
    to_ms,
    utc,
)

__all__ = [
    "ANYANG",
    "DAY_MS",
    "LOCAL",
    "LOCAL_OFFSET_MS",
    "OFF_BEFORE_SUNRISE_MIN",
    "ON_AFTER_SUNSET_MIN",
    "LampClock",
    "local_date",
    "local_day",
    "sun_times",
    "to_ms",
    "utc",
]
