"""The engine's memory: the rules in force, every device's state and the deadline heap.

No MQTT and no database here: the consumer (alerts/consumer.py) feeds it messages and timer
ticks and writes what it returns. Each device belongs to one engine process: `owns()` hashes
the device id into N partitions, so N engines split the fleet without two of them ever
evaluating one device.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.groups import GroupDetector
from urbanwatch.alerting import (
    Device,
    DeviceState,
    Plan,
    Rule,
    RuleSet,
    Transition,
    effective_rule,
    evaluate_offline,
    evaluate_reading,
    evaluate_timers,
    make_plan,
    next_timer,
    note_seen,
    offline_after_s,
    offline_deadline,
    offline_inputs,
)
from urbanwatch.queries.alerts import Change

AFTER_KEPT = 65536  # offline after_s values kept (by their inputs); then they start afresh


def partition_of(device_id: str, partitions: int) -> int:
    digest = hashlib.blake2b(device_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def to_change(tr: Transition) -> Change:
    return Change(
        action=tr.action,
        rule_id=tr.rule.id,
        subject=tr.device.device_id,
        kind=tr.device.kind,
        severity=tr.severity,
        title=tr.rule.title,
        at=_utc(tr.at),
        started=_utc(tr.started),
        device_id=tr.device.device_id,
        district=tr.device.district,
        auto_resolve=tr.rule.auto_resolve,
        detail=tr.detail,
    )


class Engine:
    def __init__(
        self,
        rules: RuleSet,
        devices: Iterable[Device],
        partition: tuple[int, int] = (0, 1),
        detectors: Sequence[GroupDetector] = (),
    ):
        self.partition = partition
        self.detectors = list(detectors)
        self.devices: dict[str, Device] = {}
        self.states: dict[str, DeviceState] = {}
        self.dirty: set[str] = set()
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}
        self._plans: dict[str, Plan] = {}
        self._shared: dict[str, Plan] = {}
        self._after: dict[str, float | None] = {}  # offline after_s when plan.offline_static
        # else, when plan.offline_inputs: (id(plan), those inputs) -> (plan, after_s), for
        # every device (the plan is kept in the value, so its id is not reused meanwhile)
        self._after_by: dict[tuple[int, tuple[Any, ...]], tuple[Plan, float | None]] = {}
        self.rules = rules
        self._index_overrides()
        self.set_devices(devices)

    # --- configuration ----------------------------------------------------------------

    def owns(self, device_id: str) -> bool:
        index, count = self.partition
        return count == 1 or partition_of(device_id, count) == index

    def set_devices(self, devices: Iterable[Device]) -> None:
        for device in devices:
            if self.owns(device.device_id):
                self.devices[device.device_id] = device
                self._plans.pop(device.device_id, None)
                self._after.pop(device.device_id, None)

    def set_rules(self, rules: RuleSet) -> None:
        """New rules: plans are rebuilt; states carry on (a rule keeps its phase by id)."""
        self.rules = rules
        self._index_overrides()
        self._plans.clear()
        self._shared.clear()
        self._after.clear()
        self._after_by.clear()
        for device_id in self.states:
            self.schedule(device_id)

    def plan(self, device: Device) -> Plan:
        plan = self._plans.get(device.device_id)
        if plan is None:
            rules = self._by_kind.get(device.kind)
            if rules is None:
                rules = self._by_kind[device.kind] = self.rules.by_kind(device.kind)
            # Only overrides naming this kind, district or device can change a rule; most
            # devices have none and share their kind's plan (indexed in `_index_overrides`).
            if (
                self._scoped[0].get(device.kind)
                or self._scoped[1].get(device.district)
                or (self._scoped[2].get(device.device_id))
            ):
                mine = [
                    effective_rule(
                        r, self.rules.overrides, device.kind, device.district, device.device_id
                    )
                    for r in rules
                ]
            else:
                mine = rules
            if mine is rules or all(a is b for a, b in zip(mine, rules, strict=True)):
                plan = self._shared.get(device.kind) or make_plan(mine)
                self._shared[device.kind] = plan
            else:
                plan = make_plan(mine)
            self._plans[device.device_id] = plan
        return plan

    def _index_overrides(self) -> None:
        self._by_kind: dict[str, list[Rule]] = {}
        self._scoped: tuple[dict[str | None, bool], ...] = ({}, {}, {})
        for o in self.rules.overrides:
            for index, scope in enumerate((o.kind, o.district, o.device)):
                if scope is not None:
                    self._scoped[index][scope] = True

    def restore(self, states: Mapping[str, dict[str, Any]], seen: Mapping[str, float]) -> None:
        """States saved by a previous run, and last-seen times (wall, epoch s) from the
        stored readings and status rows; then every deadline is rebuilt."""
        for device_id, data in states.items():
            if device_id in self.devices:
                self.states[device_id] = DeviceState.from_json(data)
        for device_id, wall in seen.items():
            if device_id in self.devices:
                state = self.state(device_id)
                if state.last_seen is None or wall > state.last_seen:
                    state.last_seen = wall
        for device_id in self.states:
            self.schedule(device_id)

    def state(self, device_id: str) -> DeviceState:
        state = self.states.get(device_id)
        if state is None:
            state = self.states[device_id] = DeviceState()
        return state

    # --- input ------------------------------------------------------------------------

    def on_reading(
        self,
        device: Device,
        fields: Mapping[str, Any],
        ts: float,
        wall: float,
        extra: Mapping[str, Any] | None = None,
    ) -> list[Change]:
        state, plan = self.state(device.device_id), self.plan(device)
        transitions = note_seen(plan, device, state, wall)
        newest = state.last_ts is None or ts > state.last_ts
        transitions += evaluate_reading(plan, device, state, fields, ts, wall, extra)
        self.dirty.add(device.device_id)
        self._schedule(device.device_id, device, state, plan)
        changes = self._changes(transitions) if transitions else []
        if newest and self.detectors:
            for detector in self.detectors:
                changes += detector.on_reading(device, fields, ts)
        return changes

    def on_status(self, device: Device, status: str, wall: float) -> list[Change]:
        state, plan = self.state(device.device_id), self.plan(device)
        transitions = note_seen(plan, device, state, wall, status)
        self.dirty.add(device.device_id)
        self.schedule(device.device_id)
        return self._changes(transitions)

    def on_tick(self, wall: float) -> list[Change]:
        """Every deadline due by `wall`: debounce timers and offline."""
        transitions: list[Transition] = []
        while self._heap and self._heap[0][0] <= wall:
            due, device_id = heapq.heappop(self._heap)
            if self._scheduled.get(device_id) != due:
                continue  # superseded by a newer entry
            del self._scheduled[device_id]
            device, state = self.devices.get(device_id), self.states.get(device_id)
            if device is None or state is None:
                continue
            plan = self.plan(device)
            found = evaluate_timers(plan, device, state, wall)
            found += evaluate_offline(plan, device, state, wall)
            if found:
                self.dirty.add(device_id)
                transitions += found
            self.schedule(device_id)
        return self._changes(transitions)

    def next_deadline(self) -> float | None:
        while self._heap and self._scheduled.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def schedule(self, device_id: str) -> None:
        device, state = self.devices.get(device_id), self.states.get(device_id)
        if device is None or state is None:
            return
        self._schedule(device_id, device, state, self.plan(device))

    def _schedule(self, device_id: str, device: Device, state: DeviceState, plan: Plan) -> None:
        timer = next_timer(plan, state)
        offline = self._offline_deadline(plan, device, state)
        if timer is None:
            if offline is None:
                return  # an entry still queued wakes up, finds nothing due, and is dropped
            due = offline
        else:
            due = timer if offline is None or timer < offline else offline
        current = self._scheduled.get(device_id)
        # One live entry per device: an earlier one stays (it wakes, re-evaluates and
        # schedules the next); so a reading every second does not grow the heap.
        if current is None or due < current:
            self._scheduled[device_id] = due
            heapq.heappush(self._heap, (due, device_id))

    def _offline_deadline(self, plan: Plan, device: Device, state: DeviceState) -> float | None:
        if not plan.offline_static and plan.offline_inputs is None:
            return offline_deadline(plan, device, state)
        if state.last_seen is None or state.offline:
            return None
        if not plan.offline_static:  # after_s decided by a few inputs: one value per inputs
            key = (id(plan), offline_inputs(plan, device, state))
            kept = self._after_by.get(key)
            if kept is not None and kept[0] is plan:
                after = kept[1]
            else:
                after = offline_after_s(plan, device, state)
                if len(self._after_by) >= AFTER_KEPT:
                    self._after_by.clear()
                self._after_by[key] = (plan, after)
        elif device.device_id in self._after:
            after = self._after[device.device_id]
        else:
            after = self._after[device.device_id] = offline_after_s(plan, device, state)
        return None if after is None else state.last_seen + after

    def take_dirty(self) -> list[tuple[str, dict[str, Any]]]:
        out = [(d, self.states[d].to_json()) for d in self.dirty if d in self.states]
        self.dirty.clear()
        return out

    def _changes(self, transitions: list[Transition]) -> list[Change]:
        changes = [to_change(t) for t in transitions]
        for tr in transitions:
            for detector in self.detectors:
                changes += detector.on_transition(tr)
        return changes
