"""Street lighting groups (docs/domain.md §4.3): SL_SUPPLY_LOSS escalated to one circuit (or
cabinet) alert that suppresses the per-lamp alerts, and dark road segments (≥ 2 adjacent
lamps out longer than the configured time). Pure: state in memory, time from the readings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from alerts.detectors.common import Topology, group_change
from alerts.detectors.config import DetectorConfig
from urbanwatch.alerting import Device, Transition
from urbanwatch.queries.alerts import Change

CIRCUIT_RULE = "SL_CIRCUIT_SUPPLY_LOSS"
CIRCUIT_TITLE = "回路/箱变失电 Circuit (cabinet) supply lost"
DARK_RULE = "SL_DARK_SEGMENT"
DARK_TITLE = "路段连续灭灯 Dark road segment"
OUT_RULES = ("SL_LAMP_OUT", "SL_SUPPLY_LOSS")


class LightingDetector:
    def __init__(self, topology: Topology, config: DetectorConfig | None = None):
        self.top = topology
        self.cfg = config or DetectorConfig()
        self.supply_out: dict[str, dict[str, float]] = {}  # circuit -> lamp -> started
        self.circuits_open: dict[str, float] = {}  # circuit -> opened at
        self.out: dict[str, dict[str, float]] = {}  # lamp -> rule -> started
        self.dark_open: dict[str, float] = {}  # segment -> opened at
        self.dark_lamps: dict[str, list[str]] = {}  # segment -> the dark run
        self.districts: dict[str, str | None] = {}

    RULES = (*OUT_RULES, CIRCUIT_RULE, DARK_RULE)

    def restore(self, rows: list[tuple[Any, ...]]) -> None:
        """Seed from the unresolved alerts of a previous run (queries.detectors.unresolved)."""
        for rule_id, subject, device_id, district, opened_at, active, _detail in rows:
            started = opened_at.timestamp()
            if rule_id in OUT_RULES and active and device_id:
                self.out.setdefault(device_id, {})[rule_id] = started
                self.districts[device_id] = district
                circuit = self.top.circuit_of.get(device_id)
                if rule_id == "SL_SUPPLY_LOSS" and circuit:
                    self.supply_out.setdefault(circuit, {})[device_id] = started
            elif rule_id == CIRCUIT_RULE:
                self.circuits_open[subject] = started
            elif rule_id == DARK_RULE:
                self.dark_open[subject] = started

    # --- GroupDetector ----------------------------------------------------------------

    def on_reading(self, device: Device, fields: Mapping[str, Any], ts: float) -> list[Change]:
        if device.kind != "streetlight" or not self.out:
            return []
        return self._dark(ts)

    def on_transition(self, tr: Transition) -> list[Change]:
        if tr.rule.id not in OUT_RULES:
            return []
        lamp = tr.device.device_id
        self.districts[lamp] = tr.device.district
        rules = self.out.setdefault(lamp, {})
        if tr.action == "open":
            rules[tr.rule.id] = tr.started
        else:
            rules.pop(tr.rule.id, None)
            if not rules:
                del self.out[lamp]
        changes = self._circuit(tr) if tr.rule.id == "SL_SUPPLY_LOSS" else []
        return changes + self._dark(tr.at)

    # --- circuits ---------------------------------------------------------------------

    def escalated(self, out: int, size: int | None) -> bool:
        if out >= self.cfg.circuit_min_lamps:
            return True
        return bool(size) and out >= 2 and out / size >= self.cfg.circuit_min_share  # type: ignore[operator]

    def _circuit(self, tr: Transition) -> list[Change]:
        lamp = tr.device.device_id
        circuit = self.top.circuit_of.get(lamp) or _attr(tr.device, "circuit_id", "cabinet_id")
        if circuit is None:
            return []
        lamps = self.supply_out.setdefault(circuit, {})
        if tr.action == "open":
            lamps[lamp] = tr.started
        else:
            lamps.pop(lamp, None)
        size = self.top.circuit_size.get(circuit)
        detail = {"circuit": circuit, "lamps_out": len(lamps), "lamps": size}
        children = [("SL_SUPPLY_LOSS", d) for d in lamps]
        is_open = circuit in self.circuits_open
        if self.escalated(len(lamps), size):
            children += [  # dark segments this circuit explains, opened before it was escalated
                (DARK_RULE, seg)
                for seg, run in self.dark_lamps.items()
                if run and all(self.top.circuit_of.get(d) == circuit for d in run)
            ]
            action = "update" if is_open else "open"
            started = self.circuits_open.setdefault(circuit, min(lamps.values()))
            return [self._change(action, circuit, tr, started, detail, children, True)]
        if is_open:  # the circuit is back: lamps still out are notified on their own again
            started = self.circuits_open.pop(circuit)
            return [self._change("clear", circuit, tr, started, detail, children, False)]
        return []

    def _change(
        self,
        action: str,
        circuit: str,
        tr: Transition,
        started: float,
        detail: dict[str, Any],
        children: list[tuple[str, str]],
        suppress: bool,
    ) -> Change:
        return group_change(
            action, CIRCUIT_RULE, circuit, "streetlight", "alarm", CIRCUIT_TITLE, tr.at,
            started, district=tr.device.district, detail=detail, children=children,
            suppress=suppress,
        )  # fmt: skip

    # --- dark segments ----------------------------------------------------------------

    def _dark(self, now: float) -> list[Change]:
        changes: list[Change] = []
        segments = {self.top.segment_of[d] for d in self.out if d in self.top.segment_of}
        for seg in sorted(segments | set(self.dark_open)):
            run = self.dark_run(seg, now)
            if run:
                self.dark_lamps[seg] = run
            if run and seg not in self.dark_open:
                self.dark_open[seg] = now
                changes += self._dark_open(seg, run, now)
            elif not run and seg in self.dark_open:
                started = self.dark_open.pop(seg)
                self.dark_lamps.pop(seg, None)
                changes.append(self._dark_change("clear", seg, [], now, started))
        return changes

    def dark_run(self, seg: str, now: float) -> list[str]:
        """The longest run of adjacent lamps out for at least `dark_after_s`, if it is long
        enough (else [])."""
        best: list[str] = []
        run: list[str] = []
        for lamp in self.top.segment_order.get(seg, []):
            started = self.out.get(lamp)
            if started and now - min(started.values()) >= self.cfg.dark_after_s:
                run.append(lamp)
                best = run if len(run) > len(best) else best
            else:
                run = []
        return list(best) if len(best) >= self.cfg.dark_min_lamps else []

    def _dark_open(self, seg: str, run: list[str], now: float) -> list[Change]:
        changes = [self._dark_change("open", seg, run, now, now)]
        circuits = {self.top.circuit_of.get(d) for d in run}
        if all(c in self.circuits_open for c in circuits):  # a circuit fault explains it
            for c in sorted(c for c in circuits if c is not None):
                lamps = self.supply_out.get(c, {})
                changes.append(
                    group_change(
                        "update",
                        CIRCUIT_RULE,
                        c,
                        "streetlight",
                        "alarm",
                        CIRCUIT_TITLE,
                        now,
                        self.circuits_open[c],
                        district=self.districts.get(run[0]),
                        detail={
                            "circuit": c,
                            "lamps_out": len(lamps),
                            "lamps": self.top.circuit_size.get(c),
                            "dark_segment": seg,
                        },
                        children=[(DARK_RULE, seg)],
                    )
                )
        return changes

    def _dark_change(
        self, action: str, seg: str, run: list[str], now: float, started: float
    ) -> Change:
        lamp_out = [("SL_LAMP_OUT", d) for d in run if "SL_LAMP_OUT" in self.out.get(d, {})]
        return group_change(
            action, DARK_RULE, seg, "streetlight", "alarm", DARK_TITLE, now, started,
            district=self.districts.get(run[0]) if run else None,
            detail={"segment": seg, "lamps": run}, children=lamp_out, suppress=False,
        )  # fmt: skip


def _attr(device: Device, *names: str) -> str | None:
    for name in names:
        if device.attrs.get(name):
            return str(device.attrs[name])
    return None
