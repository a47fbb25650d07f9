"""What the engine remembers about one device between readings, and its JSON form (the
engine persists it with every alert change, so a restart resumes exactly where it stopped).

Times are epoch seconds: `ts` values are reading (device) times, `wall` values are when the
engine received the message (for timers: minimum durations and offline deadlines).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from operator import itemgetter, ne
from typing import Any, Literal

Phase = Literal["idle", "pending", "active", "clearing"]
_TS = itemgetter(0)
_VALUE = itemgetter(1)


@dataclass(slots=True)
class RuleState:
    phase: Phase = "idle"
    since: float = 0.0  # ts the pending / clearing phase began
    count: int = 0  # consecutive readings in that phase
    wall: float = 0.0  # wall time the phase began (timers)
    opened_at: float = 0.0  # ts the condition started, for the alert


@dataclass(slots=True)
class DeviceState:
    last_ts: float | None = None  # the newest reading evaluated
    last_seen: float | None = None  # wall time of the newest message (offline)
    offline: bool = False
    last: dict[str, Any] = field(default_factory=dict)  # newest known value of each field
    rules: dict[str, RuleState] = field(default_factory=dict)
    # "field:seconds" -> sorted [(ts, value)] within the longest window on that field
    windows: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)
    held: dict[str, tuple[Any, float]] = field(default_factory=dict)  # field -> (value, since ts)

    def rule(self, rule_id: str) -> RuleState:
        state = self.rules.get(rule_id)
        if state is None:
            state = self.rules[rule_id] = RuleState()
        return state

    def to_json(self) -> dict[str, Any]:
        return {
            "last_ts": self.last_ts,
            "last_seen": self.last_seen,
            "offline": self.offline,
            "last": self.last,
            "rules": {
                k: [r.phase, r.since, r.count, r.wall, r.opened_at]
                for k, r in self.rules.items()
                if r.phase != "idle"
            },
            "windows": self.windows,
            "held": self.held,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceState:
        return cls(
            last_ts=data.get("last_ts"),
            last_seen=data.get("last_seen"),
            offline=bool(data.get("offline")),
            last=dict(data.get("last") or {}),
            rules={k: RuleState(*v) for k, v in (data.get("rules") or {}).items()},
            windows={k: [tuple(e) for e in v] for k, v in (data.get("windows") or {}).items()},  # type: ignore[misc]
            held={k: (v[0], v[1]) for k, v in (data.get("held") or {}).items()},
        )


def add_to_window(entries: list[tuple[float, Any]], ts: float, value: Any, keep_s: float) -> None:
    """Insert in ts order (late readings too), once per ts (a redelivery adds nothing), and
    drop what fell out of the window."""
    i = bisect.bisect_left(entries, ts, key=_TS)
    if i < len(entries) and entries[i][0] == ts:
        return
    entries.insert(i, (ts, value))
    newest = entries[-1][0]
    cut = bisect.bisect_left(entries, newest - keep_s, key=_TS)
    if cut:
        del entries[:cut]


def aggregate(entries: list[tuple[float, Any]], since: float, agg: str) -> Any:
    """The window's aggregate over entries with ts > since; None when there are none."""
    start = bisect.bisect_right(entries, since, key=_TS)
    if agg == "count":
        return len(entries) - start
    if start >= len(entries):
        return None
    values = list(map(_VALUE, entries[start:]))  # C loops, no Python loop per entry
    if agg == "changes":
        return sum(map(ne, values, values[1:]))
    if agg == "sum":
        return sum(values)
    if agg == "min":
        return min(values)
    if agg == "max":
        return max(values)
    return sum(values) / len(values)
