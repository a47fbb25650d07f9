"""Rain: storm events with an intensity profile over time, per district."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

STEP_MS = 60_000  # rain and ponding are integrated in 1-minute steps


@dataclass(frozen=True)
class Storm:
    """A storm's hyetograph. `triangle` rises to the peak at `peak_at` of the duration and
    falls back (a simple design-storm shape); `uniform` rains at the peak throughout."""

    start_ms: int
    end_ms: int
    peak_mm_h: float
    shape: str = "triangle"
    peak_at: float = 0.4
    districts: frozenset[str] | None = None  # None: the whole city

    def intensity(self, t_ms: int, district: str) -> float:
        if not self.start_ms <= t_ms < self.end_ms:
            return 0.0
        if self.districts is not None and district not in self.districts:
            return 0.0
        if self.shape == "uniform":
            return self.peak_mm_h
        x = (t_ms - self.start_ms) / (self.end_ms - self.start_ms)
        if x < self.peak_at:
            return self.peak_mm_h * x / self.peak_at
        return self.peak_mm_h * (1 - x) / (1 - self.peak_at)

    @property
    def total_mm(self) -> float:
        hours = (self.end_ms - self.start_ms) / 3_600_000
        return self.peak_mm_h * hours * (1.0 if self.shape == "uniform" else 0.5)


@dataclass
class Weather:
    storms: list[Storm] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.storms.sort(key=lambda s: s.start_ms)
        self._starts = [s.start_ms for s in self.storms]

    def intensity(self, t_ms: int, district: str) -> float:
        """Rain intensity in mm/h."""
        total = 0.0
        for s in self.storms:
            if s.start_ms > t_ms:
                break
            if t_ms < s.end_ms:
                total += s.intensity(t_ms, district)
        return total

    def raining(self, t0_ms: int, t1_ms: int, district: str | None = None) -> bool:
        """Whether any storm (over the district, when given) overlaps (t0, t1]."""
        return any(
            s.start_ms <= t1_ms
            and s.end_ms > t0_ms
            and (district is None or s.districts is None or district in s.districts)
            for s in self.storms
        )

    def next_start(self, t_ms: int) -> int | None:
        """The first storm start strictly after t, to wake sleeping sensors."""
        i = bisect.bisect_right(self._starts, t_ms)
        return self._starts[i] if i < len(self._starts) else None

    def rain_mm(self, t0_ms: int, t1_ms: int, district: str, factor: float = 1.0) -> float:
        """Rain that fell in (t0, t1], midpoint rule on 1-minute steps."""
        if not self.raining(t0_ms, t1_ms):
            return 0.0
        total, t = 0.0, t0_ms
        while t < t1_ms:
            step = min(STEP_MS, t1_ms - t)
            total += self.intensity(t + step // 2, district) * step / 3_600_000
            t += step
        return total * factor
