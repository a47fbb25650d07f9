"""Suspected burst (docs/domain.md §5.6): WS_FLOW_ANOMALY at a DMA inlet and WS_PRESSURE_DROP at
the DMA's pressure points within a window -> one critical alert for the DMA, the meter alerts
under it (suppressed). It clears when neither kind of meter alert is open any more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.detectors.common import Topology, group_change
from alerts.detectors.config import DetectorConfig
from urbanwatch.alerting import Device, Transition
from urbanwatch.queries.alerts import Change

BURST_RULE = "WS_SUSPECTED_BURST"
BURST_TITLE = "疑似爆管 Suspected burst"
FLOW, PRESSURE = "WS_FLOW_ANOMALY", "WS_PRESSURE_DROP"


class BurstDetector:
    def __init__(self, topology: Topology, config: DetectorConfig | None = None):
        self.top = topology
        self.cfg = config or DetectorConfig()
        self.open: dict[str, dict[str, dict[str, float]]] = {}  # dma -> rule -> meter -> start
        self.bursts: dict[str, float] = {}  # dma -> started

    RULES = (FLOW, PRESSURE, BURST_RULE)

    def restore(self, rows: list[tuple[Any, ...]]) -> None:
        """Seed from the unresolved alerts of a previous run (queries.detectors.unresolved)."""
        for rule_id, subject, device_id, _district, opened_at, active, _detail in rows:
            if rule_id == BURST_RULE:
                self.bursts[subject] = opened_at.timestamp()
            elif active and device_id and device_id in self.top.dma_of:
                dma = self.top.dma_of[device_id]
                by_rule = self.open.setdefault(dma, {FLOW: {}, PRESSURE: {}})
                by_rule[rule_id][device_id] = opened_at.timestamp()

    def on_reading(self, device: Device, fields: Mapping[str, Any], ts: float) -> list[Change]:
        return []

    def on_transition(self, tr: Transition) -> list[Change]:
        if tr.rule.id not in (FLOW, PRESSURE):
            return []
        meter = tr.device.device_id
        dma = self.top.dma_of.get(meter) or tr.device.attrs.get("dma_id")
        if not dma:
            return []
        dma = str(dma)
        by_rule = self.open.setdefault(dma, {FLOW: {}, PRESSURE: {}})
        if tr.action == "open":
            by_rule[tr.rule.id][meter] = tr.started
        else:
            by_rule[tr.rule.id].pop(meter, None)
        flow, pressure = by_rule[FLOW], by_rule[PRESSURE]
        children = [(FLOW, m) for m in flow] + [(PRESSURE, m) for m in pressure]
        detail = {
            "dma": dma,
            "flow_anomaly": sorted(flow),
            "pressure_drop": sorted(pressure),
        }
        district = tr.device.district
        if dma in self.bursts:
            started = self.bursts[dma]
            if not flow and not pressure:
                del self.bursts[dma]
                return [self._change("clear", dma, tr.at, started, detail, children, district)]
            return [self._change("update", dma, tr.at, started, detail, children, district)]
        if tr.action == "open" and self.suspected(dma, flow, pressure):
            started = min([*flow.values(), *pressure.values()])
            self.bursts[dma] = started
            return [self._change("open", dma, tr.at, started, detail, children, district)]
        return []

    def suspected(self, dma: str, flow: dict[str, float], pressure: dict[str, float]) -> bool:
        """A flow anomaly and enough pressure drops, all begun within the window."""
        points = self.top.pressure_points.get(dma, 0)
        need = max(1, min(self.cfg.burst_min_pressure_points, points or 1))
        if not flow or len(pressure) < need:
            return False
        starts = [*flow.values(), *pressure.values()]
        return max(starts) - min(starts) <= self.cfg.burst_window_s

    def _change(
        self,
        action: str,
        dma: str,
        at: float,
        started: float,
        detail: dict[str, Any],
        children: list[tuple[str, str]],
        district: str | None,
    ) -> Change:
        return group_change(
            action, BURST_RULE, dma, "watermeter", "critical", BURST_TITLE, at, started,
            district=district, detail=detail, children=children, suppress=action != "clear",
        )  # fmt: skip
