"""Sunrise and sunset at Anyang (astral), and the lamps' expected-on window
(docs/domain.md §4.3).

Times are epoch milliseconds (UTC); a "local day" is a calendar day in Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from astral import Observer
from astral.sun import sunrise, sunset

ANYANG = Observer(latitude=36.1, longitude=114.35, elevation=75.0)
LOCAL = ZoneInfo("Asia/Shanghai")
LOCAL_OFFSET_MS = 8 * 3600 * 1000  # Asia/Shanghai has no daylight saving time
DAY_MS = 86_400_000
# docs/domain.md §4.3 [P]: lamps switch on at sunset + 10 min and off at sunrise − 10 min.
ON_AFTER_SUNSET_MIN = 10.0
OFF_BEFORE_SUNRISE_MIN = 10.0


def local_day(t_ms: int) -> int:
    """Days since 1970-01-01 in local time."""
    return (t_ms + LOCAL_OFFSET_MS) // DAY_MS


def local_date(t_ms: int) -> date:
    return date(1970, 1, 1) + timedelta(days=local_day(t_ms))


def to_ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def sun_times(day: date) -> tuple[datetime, datetime]:
    """Sunrise and sunset on a local date, as aware datetimes in Asia/Shanghai."""
    return sunrise(ANYANG, day, tzinfo=LOCAL), sunset(ANYANG, day, tzinfo=LOCAL)


@dataclass
class LampClock:
    """When functional lighting is expected on; cached per local day because every lamp
    report asks."""

    on_after_sunset_min: float = ON_AFTER_SUNSET_MIN
    off_before_sunrise_min: float = OFF_BEFORE_SUNRISE_MIN
    _days: dict[int, tuple[int, int]] = field(default_factory=dict, repr=False)

    def day(self, day: int) -> tuple[int, int]:
        """(lamps off, lamps on) in epoch ms for a local day number."""
        cached = self._days.get(day)
        if cached is None:
            rise, set_ = sun_times(date(1970, 1, 1) + timedelta(days=day))
            cached = (
                to_ms(rise) - int(self.off_before_sunrise_min * 60000),
                to_ms(set_) + int(self.on_after_sunset_min * 60000),
            )
            self._days[day] = cached
        return cached

    def is_on(self, t_ms: int) -> bool:
        off, on = self.day(local_day(t_ms))
        return t_ms < off or t_ms >= on

    def next_switch(self, t_ms: int) -> int:
        """The first switching instant strictly after t."""
        day = local_day(t_ms)
        off, on = self.day(day)
        if t_ms < off:
            return off
        if t_ms < on:
            return on
        return self.day(day + 1)[0]


def utc(t_ms: int) -> datetime:
    return datetime.fromtimestamp(t_ms / 1000, UTC)
