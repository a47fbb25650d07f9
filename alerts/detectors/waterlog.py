"""Waterlogging groups (docs/domain.md §3.3): one WL_EVENT per flooding episode per point (opens
at ≥ 15 cm, closes once < 5 cm has held 30 min; max depth, minutes ≥ 15 cm, time to drain,
the event's rain; updated live while open), and one storm incident per rain episode that
groups the city's waterlogging alerts and events (children suppressed: one notification with a
live count). Migration 016 keeps `wl_events` in step with the WL_EVENT alerts. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.detectors.common import Topology, group_change, utc
from alerts.detectors.config import DetectorConfig
from urbanwatch.alerting import Device, Transition
from urbanwatch.queries.alerts import Change

EVENT_RULE, EVENT_TITLE = "WL_EVENT", "积水事件 Flooding episode"
STORM_RULE, STORM_TITLE = "STORM_INCIDENT", "暴雨内涝事件 Storm incident"
GROUPED = ("WL_LEVEL_", "RAIN_HEAVY", "RAIN_SIGNAL_")
RAIN_KEEP_S = 86400.0
LOCAL = timedelta(hours=8)  # Asia/Shanghai, no daylight saving


def local_stamp(t: float) -> str:
    return (utc(t) + LOCAL).strftime("%Y%m%dT%H%M")


@dataclass
class Episode:
    subject: str
    start: float
    district: str | None
    rain_from: float
    max_depth: float
    peak_ts: float
    last_ts: float
    last_depth: float
    above_s: float = 0.0
    below_since: float | None = None
    updated_at: float = 0.0

    def detail(self, now: float, rain: tuple[float, float | None]) -> dict[str, Any]:
        drained = self.below_since
        return {
            "start": utc(self.start).isoformat(),
            "end": utc(drained).isoformat() if drained is not None else None,
            "max_depth_cm": round(self.max_depth, 1),
            "peak_at": utc(self.peak_ts).isoformat(),
            "duration_above_15cm_min": round(self.above_s / 60, 1),
            "time_to_drain_min": (
                round((drained - self.peak_ts) / 60, 1) if drained is not None else None
            ),
            "rain_acc_event_mm": round(rain[0], 1),
            "max_intensity_mm_h": None if rain[1] is None else round(rain[1], 1),
            "depth_cm": round(self.last_depth, 1),
        }


@dataclass
class Storm:
    subject: str
    started: float
    district: str | None
    events: set[str] = field(default_factory=set)
    max_depth: float = 0.0
    prior: int = 0  # events counted before a restart


class WaterlogDetector:
    def __init__(self, topology: Topology, config: DetectorConfig | None = None):
        self.top = topology
        self.cfg = config or DetectorConfig()
        self.episodes: dict[str, Episode] = {}
        self.rain: dict[
            str, list[tuple[float, float, float | None]]
        ] = {}  # gauge -> (ts, mm, mm/h)
        self.gauge_district: dict[str, str] = {}
        self.rain_start: float | None = None
        self.last_rain: float | None = None
        self.storm: Storm | None = None
        self.grouped: set[tuple[str, str]] = set()  # open WL_LEVEL / RAIN alerts

    RULES = (EVENT_RULE, STORM_RULE, "WL_LEVEL_L0", "WL_LEVEL_L1", "WL_LEVEL_L2", "WL_LEVEL_L3",
             "WL_LEVEL_L4", "RAIN_HEAVY_1H", "RAIN_SIGNAL_BLUE", "RAIN_SIGNAL_YELLOW",
             "RAIN_SIGNAL_ORANGE", "RAIN_SIGNAL_RED")  # fmt: skip

    def restore(self, rows: list[tuple[Any, ...]]) -> None:
        """Seed from the unresolved alerts of a previous run (queries.detectors.unresolved):
        open episodes carry on from their last stored figures."""
        for rule_id, subject, device_id, district, opened_at, active, detail in rows:
            start = opened_at.timestamp()
            if rule_id == EVENT_RULE and device_id:
                depth = float(detail.get("depth_cm") or 0.0)
                peak = detail.get("peak_at")
                ep = Episode(
                    subject, start, district, start, float(detail.get("max_depth_cm") or depth),
                    datetime.fromisoformat(peak).timestamp() if peak else start, start, depth,
                    above_s=float(detail.get("duration_above_15cm_min") or 0) * 60,
                )  # fmt: skip
                at = detail.get("at")
                if at:
                    ep.last_ts = ep.updated_at = datetime.fromisoformat(at).timestamp()
                self.episodes[device_id] = ep
            elif rule_id == STORM_RULE:
                self.storm = Storm(subject, start, None, prior=int(detail.get("events") or 0))
                self.storm.max_depth = float(detail.get("max_depth_cm") or 0.0)
            elif active and device_id:
                self.grouped.add((rule_id, device_id))
        if self.storm is not None:
            self.storm.prior -= len(self.episodes)
            self.storm.events |= {ep.subject for ep in self.episodes.values()}

    # --- GroupDetector ----------------------------------------------------------------

    def on_reading(self, device: Device, fields: Mapping[str, Any], ts: float) -> list[Change]:
        if device.kind != "waterlog":
            return []
        changes: list[Change] = []
        if isinstance(fields.get("rain_mm"), int | float):
            self._rain(device, float(fields["rain_mm"]), fields.get("rain_intensity_mm_h"), ts)
        depth = fields.get("depth_cm")
        if isinstance(depth, int | float) and not isinstance(depth, bool):
            changes += self._depth(device, float(depth), ts)
        return changes + self._storm_end(ts)

    def on_transition(self, tr: Transition) -> list[Change]:
        if not tr.rule.id.startswith(GROUPED):
            return []
        key = (tr.rule.id, tr.device.device_id)
        if tr.action == "open":
            self.grouped.add(key)
            if self.storm is not None:
                return [self._storm_change("update", tr.at, [key])]
        else:
            self.grouped.discard(key)
        return []

    # --- rain -------------------------------------------------------------------------

    def _rain(self, device: Device, mm: float, intensity: Any, ts: float) -> None:
        log = self.rain.setdefault(device.device_id, [])
        self.gauge_district[device.device_id] = device.district or ""
        rate: float | None = float(intensity) if isinstance(intensity, int | float) else None
        if rate is None and log and 0 < ts - log[-1][0] <= 3600:
            rate = mm * 3600 / (ts - log[-1][0])
        log.append((ts, mm, rate))
        while log and log[0][0] < ts - RAIN_KEEP_S:
            log.pop(0)
        if mm > 0:
            if self.last_rain is None or ts - self.last_rain >= self.cfg.storm_dry_s:
                self.rain_start = ts
            self.last_rain = ts if self.last_rain is None else max(ts, self.last_rain)

    def rain_between(
        self, district: str | None, start: float, end: float
    ) -> tuple[float, float | None]:
        """Mean rain over the district's gauges (all gauges if it has none) in [start, end],
        and the highest intensity any of them saw."""
        gauges = [g for g, d in self.gauge_district.items() if d == (district or "")]
        gauges = gauges or list(self.gauge_district)
        totals, peak = [], None
        for g in gauges:
            rows = [r for r in self.rain.get(g, []) if start <= r[0] <= end]
            totals.append(sum(r[1] for r in rows))
            rates = [r[2] for r in rows if r[2] is not None and r[1] > 0]
            if rates:
                peak = max(rates) if peak is None else max(peak, *rates)
        return (sum(totals) / len(totals) if totals else 0.0), peak

    # --- episodes ---------------------------------------------------------------------

    def _depth(self, device: Device, depth: float, ts: float) -> list[Change]:
        ep = self.episodes.get(device.device_id)
        if ep is None:
            if depth < self.cfg.event_open_cm:
                return []
            raining = self.last_rain is not None and ts - self.last_rain < self.cfg.storm_dry_s
            rain_from = min(ts, self.rain_start) if raining and self.rain_start else ts
            ep = Episode(
                f"{device.device_id}@{local_stamp(ts)}", ts, device.district, rain_from,
                depth, ts, ts, depth, updated_at=ts,
            )  # fmt: skip
            self.episodes[device.device_id] = ep
            storm = self._storm_add(ep, ts)  # first, so the event names its storm
            return [self._event("open", device, ep, ts), *storm]
        if ep.last_depth >= self.cfg.event_open_cm:
            ep.above_s += ts - ep.last_ts
        grew = depth >= ep.max_depth + 1.0
        if depth > ep.max_depth:
            ep.max_depth, ep.peak_ts = depth, ts
        ep.last_ts, ep.last_depth = ts, depth
        if depth >= self.cfg.event_close_cm:
            ep.below_since = None
        elif ep.below_since is None:
            ep.below_since = ts
        if ep.below_since is not None and ts - ep.below_since >= self.cfg.event_close_after_s:
            del self.episodes[device.device_id]
            final = self._event("update", device, ep, ts)
            return [final, self._event("clear", device, ep, ts), *self._storm_update(ts)]
        if grew or ts - ep.updated_at >= self.cfg.event_update_s:
            ep.updated_at = ts
            return [self._event("update", device, ep, ts)] + (
                self._storm_update(ts) if grew else []
            )
        return []

    def _event(self, action: str, device: Device, ep: Episode, ts: float) -> Change:
        end = ep.below_since if ep.below_since is not None else ts
        detail = ep.detail(ts, self.rain_between(ep.district, ep.rain_from, end))
        detail["point_id"] = device.attrs.get("point_id")
        if self.storm is not None:
            detail["storm"] = self.storm.subject
        return group_change(
            action, EVENT_RULE, ep.subject, "waterlog", "info", EVENT_TITLE, ts, ep.start,
            district=device.district, detail=detail, device_id=device.device_id,
        )  # fmt: skip

    # --- storm incident ---------------------------------------------------------------

    def _storm_add(self, ep: Episode, ts: float) -> list[Change]:
        if self.storm is None:
            self.storm = Storm(f"STORM-{local_stamp(ep.rain_from)}", ep.rain_from, ep.district)
            self.storm.events.add(ep.subject)
            self.storm.max_depth = ep.max_depth
            children = [(EVENT_RULE, ep.subject), *self.grouped]
            return [self._storm_change("open", ts, children)]
        self.storm.events.add(ep.subject)
        return [self._storm_change("update", ts, [(EVENT_RULE, ep.subject)])]

    def _storm_update(self, ts: float) -> list[Change]:
        return [] if self.storm is None else [self._storm_change("update", ts, [])]

    def _storm_end(self, ts: float) -> list[Change]:
        if self.storm is None or self.episodes:
            return []
        if self.last_rain is not None and ts - self.last_rain < self.cfg.storm_dry_s:
            return []
        change = self._storm_change("clear", ts, list(self.grouped), suppress=False)
        self.storm = None
        return [change]

    def _storm_change(
        self, action: str, ts: float, children: list[tuple[str, str]], suppress: bool = True
    ) -> Change:
        storm = self.storm
        assert storm is not None
        for ep in self.episodes.values():
            storm.max_depth = max(storm.max_depth, ep.max_depth)
        depth = storm.max_depth
        severity = "critical" if depth >= 27 else "alarm" if depth >= 20 else "warning"
        detail = {
            "events": storm.prior + len(storm.events),
            "points_flooded_now": len(self.episodes),
            "alerts_open": len(self.grouped),
            "max_depth_cm": round(depth, 1),
            "rain_since": utc(storm.started).isoformat(),
        }
        return group_change(
            action, STORM_RULE, storm.subject, "waterlog", severity, STORM_TITLE, ts,
            storm.started, district=None, detail=detail, children=children, suppress=suppress,
        )  # fmt: skip
