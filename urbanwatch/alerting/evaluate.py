"""Rule evaluation: pure functions over (rules, the device's state, a reading, the time).

No I/O and no clock: the engine passes `ts` (the reading's time) and `wall` (when it received
it, or the timer's now). The state object passed in is updated in place and is the only
thing changed. Readings are evaluated in timestamp order: a reading no newer than the
newest evaluated one (late, or a redelivery) only fills rolling windows, it never opens,
clears or resets a rule (docs/alerts.md "Late data").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from urbanwatch.alerting.expr import compile_expr
from urbanwatch.alerting.model import Rule, Severity
from urbanwatch.alerting.state import DeviceState, RuleState, add_to_window, aggregate
from urbanwatch.kinds import SPECS
from urbanwatch.sun import LampClock

LOCAL_OFFSET_S = 8 * 3600  # Asia/Shanghai, no daylight saving
_CLOCK = LampClock()  # memoises sunrise/sunset per local day (pure)
_TRIGGERING = frozenset({"idle", "pending"})
_CADENCE = frozenset({"heartbeat_s", "report_s", "fast_s", "urgent_s", "grace_s"})


@dataclass(frozen=True)
class Device:
    device_id: str
    kind: str
    district: str | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transition:
    rule: Rule
    device: Device
    action: Literal["open", "clear"]
    at: float  # ts of the change (the reading, or the deadline for timers)
    started: float  # when the condition began (opened_at of the alert)
    severity: Severity
    detail: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """A device's effective rules, with what their windows and `held.X` need."""

    rules: tuple[Rule, ...]
    reading_rules: tuple[Rule, ...]
    offline_rule: Rule | None
    keep_s: dict[str, float]  # window field -> the longest window on it
    held_fields: frozenset[str]
    # (rule, trigger, clear or None, the names whose absence makes the trigger unknown,
    # the same for the clear condition) compiled once: the per-reading loop
    steps: tuple[tuple[Rule, Any, Any, frozenset[str], frozenset[str]], ...] = ()
    # the offline rule's after_s reads only attrs, params and the kind's cadence: one value
    # per device, which the engine may keep instead of evaluating it on every reading
    offline_static: bool = False
    # else, when it reads only bare names besides attrs and params: those names, whose
    # values (`offline_inputs`) decide it; the engine keeps the last value per device
    offline_inputs: tuple[str, ...] | None = None


def make_plan(rules: Iterable[Rule]) -> Plan:
    enabled = tuple(r for r in rules if r.enabled)
    keep: dict[str, float] = {}
    held: set[str] = set()
    for rule in enabled:
        for window in rule.windows.values():
            keep[window.field] = max(keep.get(window.field, 0.0), window.s)
        for text in (rule.trigger, rule.clear):
            if text:
                held.update(n for ns, n in compile_expr(text).names if ns == "held")
    offline = next((r for r in enabled if r.type == "offline"), None)
    reading = tuple(r for r in enabled if r.type == "reading")
    steps = []
    for r in reading:
        trigger = compile_expr(r.trigger or "False")
        clear = compile_expr(r.clear) if r.clear else None
        steps.append((r, trigger, clear, trigger.strict, (clear or trigger).strict))
    static = (
        offline is not None
        and offline.after_s is not None
        and all(
            ns in ("attrs", "params") or (ns is None and name in _CADENCE)
            for ns, name in compile_expr(offline.after_s).names
        )
    )
    inputs = None
    if offline is not None and offline.after_s is not None and not static:
        names = compile_expr(offline.after_s).names
        if all(ns in (None, "attrs", "params") for ns, _ in names):
            # the cadence is the kind's (one per plan): not an input
            inputs = tuple(sorted(n for ns, n in names if ns is None and n not in _CADENCE))
            inputs += tuple(sorted(f"attrs.{n}" for ns, n in names if ns == "attrs"))
    return Plan(enabled, reading, offline, keep, frozenset(held), tuple(steps), static, inputs)


_KIND_CONTEXT: dict[str, dict[str, Any]] = {}


def _kind_context(kind: str) -> dict[str, Any]:
    """The context names that are fixed per kind (its cadence), built once."""
    base = _KIND_CONTEXT.get(kind)
    if base is None:
        cadence = SPECS[kind].cadence
        base = _KIND_CONTEXT[kind] = {
            "local_hour": 0,
            "heartbeat_s": cadence.heartbeat_s,
            "report_s": cadence.report_s,
            "fast_s": cadence.fast_s,
            "urgent_s": cadence.urgent_s,
            "grace_s": cadence.grace_s,
            "work_window": False,
        }
    return base


def context(kind: str, fields: Mapping[str, Any], ts: float) -> dict[str, Any]:
    """The bare context names (model.CONTEXT_NAMES) for a reading of `kind` at `ts`."""
    ctx = _kind_context(kind).copy()
    ctx["local_hour"] = int((ts + LOCAL_OFFSET_S) % 86400 // 3600)
    if kind == "streetlight":
        ctx["expected_on"] = _CLOCK.is_on(int(ts * 1000))
        pct = fields.get("light_state_pct")
        ctx["dim"] = pct / 100 if pct else 1.0
    return ctx


def _env(
    device: Device,
    state: DeviceState,
    fields: Mapping[str, Any],
    ts: float,
    plan: Plan,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    env = context(device.kind, fields, ts)
    env.update(fields)
    if extra:
        env.update({k: v for k, v in extra.items() if k != "profile"})
    env["attrs"] = device.attrs
    env["prev"] = state.last
    env["profile"] = (extra or {}).get("profile") or {}
    # How long each `held` field has kept its value, this reading included.
    env["held"] = (
        {
            f: 0.0 if fields.get(f) not in (None, value) else ts - since
            for f, (value, since) in state.held.items()
        }
        if state.held
        else {}
    )
    env["win"] = {}
    return env


def _windows(
    rule: Rule, state: DeviceState, ts: float, seen: dict[tuple[str, float, str], Any]
) -> dict[str, Any]:
    """`win.X` of the rule; `seen` shares equal windows between the rules of one reading."""
    out = {}
    for name, w in rule.windows.items():
        key = (w.field, w.s, w.agg)
        if key not in seen:
            seen[key] = aggregate(state.windows.get(w.field, []), ts - w.s, w.agg)
        out[name] = seen[key]
    return out


def _detail(rule: Rule, env: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in (rule.trigger,):
        for ns, name in compile_expr(text).names if text else ():
            value = env.get(name) if ns is None else env[ns].get(name)
            if isinstance(value, int | float | str | bool) or value is None:
                out[name if ns in (None, "params") else f"{ns}.{name}"] = value
            if ns == "profile":  # which profile gave it (queries/profiles.py)
                basis = f"{name.removesuffix('_sd')}_basis"
                if basis in env["profile"]:
                    out[f"profile.{basis}"] = env["profile"][basis]
    return out


def evaluate_reading(
    plan: Plan,
    device: Device,
    state: DeviceState,
    fields: Mapping[str, Any],
    ts: float,
    wall: float,
    extra: Mapping[str, Any] | None = None,
) -> list[Transition]:
    """Evaluate one reading (its fields without `ts`); returns the alert transitions.
    `extra` may carry `work_window` and `profile` (expected values) from the engine."""
    for name, keep_s in plan.keep_s.items():
        value = fields.get(name)
        if value is not None:
            add_to_window(state.windows.setdefault(name, []), ts, value, keep_s)
    if state.last_ts is not None and ts <= state.last_ts:
        return []  # late or repeated: windows only
    env = _env(device, state, fields, ts, plan, extra)
    out: list[Transition] = []
    rules = state.rules
    get = env.get
    seen: dict[tuple[str, float, str], Any] = {}
    for rule, trigger, clear, need_on, need_off in plan.steps:
        rs = rules.get(rule.id)
        # A condition that is unknown without a field the reading lacks changes nothing
        # (codegen.strict_names): skip it, with its windows and its idle state.
        need = need_on if rs is None or rs.phase in _TRIGGERING else need_off
        if need and None in map(get, need):
            continue
        env["params"] = rule.params
        if rule.windows:
            env["win"] = _windows(rule, state, ts, seen)
        if rs is None:  # idle: a false or unknown trigger leaves no state behind
            if not trigger.fn(env):
                continue
            rs = state.rule(rule.id)
        change = _step(rule, trigger, clear, device, rs, env, ts, wall)
        if change is not None:
            out.append(change)
    state.last_ts = ts
    last = state.last
    for name, value in fields.items():
        if value is not None:
            last[name] = value
    held_fields = plan.held_fields
    if held_fields:  # most kinds have none
        for name, value in fields.items():
            if value is not None and name in held_fields:
                old = state.held.get(name)
                if old is None or old[0] != value:
                    state.held[name] = (value, ts)
    return out


def _step(
    rule: Rule, trigger: Any, clear: Any, device: Device, rs: RuleState, env: dict[str, Any],
    ts: float, wall: float,
) -> Transition | None:  # fmt: skip
    if rs.phase in ("idle", "pending"):
        hit = trigger.fn(env)
        if hit is None:
            return None
        if not hit:
            rs.phase, rs.count = "idle", 0
            return None
        if rs.phase == "idle":
            rs.phase, rs.since, rs.count, rs.wall = "pending", ts, 0, wall
        rs.count += 1
        if rs.count >= rule.count and ts - rs.since >= rule.for_s:
            return _open(rule, device, rs, env, ts)
        return None
    if clear is not None:
        ok = clear.fn(env)
    else:
        hit = trigger.fn(env)
        ok = None if hit is None else not hit
    if ok is None:
        return None
    if not ok:
        rs.phase, rs.count = "active", 0
        return None
    if rs.phase == "active":
        rs.phase, rs.since, rs.count, rs.wall = "clearing", ts, 0, wall
    rs.count += 1
    if rs.count >= rule.clear_count and ts - rs.since >= rule.clear_for_s:
        return _clear(rule, device, rs, ts, _detail(rule, env))
    return None


def _open(
    rule: Rule, device: Device, rs: RuleState, env: Mapping[str, Any], at: float
) -> Transition:
    rs.phase, rs.count, rs.opened_at = "active", 0, rs.since
    severity = rule.severity
    if rule.severity_in_work_window and env.get("work_window"):
        severity = rule.severity_in_work_window
    return Transition(rule, device, "open", at, rs.since, severity, _detail(rule, env))


def _clear(
    rule: Rule, device: Device, rs: RuleState, at: float, detail: dict[str, Any]
) -> Transition:
    started = rs.opened_at
    rs.phase, rs.count = "idle", 0
    return Transition(rule, device, "clear", at, started, rule.severity, detail)


def next_timer(plan: Plan, state: DeviceState) -> float | None:
    """The earliest wall time at which a minimum duration or clear hold completes with no
    further reading (the condition is taken to hold until a reading says otherwise)."""
    best: float | None = None
    if not state.rules:
        return None
    for rule in plan.reading_rules:
        rs = state.rules.get(rule.id)
        if rs is None:
            continue
        if rs.phase == "pending" and rs.count >= rule.count and rule.for_s > 0:
            due = rs.wall + rule.for_s
        elif rs.phase == "clearing" and rs.count >= rule.clear_count and rule.clear_for_s > 0:
            due = rs.wall + rule.clear_for_s
        else:
            continue
        best = due if best is None else min(best, due)
    return best


def evaluate_timers(
    plan: Plan, device: Device, state: DeviceState, wall: float
) -> list[Transition]:
    """Complete the debounces whose hold time has passed by `wall` (see `next_timer`)."""
    out: list[Transition] = []
    env = _env(device, state, state.last, state.last_ts or 0.0, plan, None)
    for rule in plan.reading_rules:
        rs = state.rules.get(rule.id)
        if rs is None:
            continue
        env["params"] = rule.params
        if rs.phase == "pending" and rs.count >= rule.count and wall >= rs.wall + rule.for_s:
            out.append(_open(rule, device, rs, env, rs.since + rule.for_s))
        elif (
            rs.phase == "clearing"
            and rs.count >= rule.clear_count
            and wall >= rs.wall + rule.clear_for_s
        ):
            out.append(_clear(rule, device, rs, rs.since + rule.clear_for_s, {}))
    return out


def offline_after_s(plan: Plan, device: Device, state: DeviceState) -> float | None:
    """Seconds of silence after which the device counts as offline, from the offline rule
    and the device's last known values (rain mode, a cover's own heartbeat)."""
    rule = plan.offline_rule
    if rule is None or rule.after_s is None:
        return None
    env = _env(device, state, state.last, state.last_ts or 0.0, plan, None)
    env["params"] = rule.params
    value = compile_expr(rule.after_s)(env)
    return float(value) if isinstance(value, int | float) and value > 0 else None


def note_seen(
    plan: Plan, device: Device, state: DeviceState, wall: float, status: str | None = None
) -> list[Transition]:
    """A message from the device at wall time `wall` (a reading, or a status message):
    it clears an offline alert; a last will (`offline`) opens one at once when the offline
    rule's `on_last_will` param says so."""
    rule = plan.offline_rule
    if state.last_seen is not None and wall < state.last_seen:
        return []
    if status == "offline":
        if rule is None or not rule.params.get("on_last_will") or state.offline:
            return []
        state.offline = True
        return [
            Transition(rule, device, "open", wall, wall, rule.severity, {"reason": "last_will"})
        ]
    state.last_seen = wall
    if state.offline and rule is not None:
        state.offline = False
        return [Transition(rule, device, "clear", wall, wall, rule.severity, {})]
    state.offline = False
    return []


def offline_inputs(plan: Plan, device: Device, state: DeviceState) -> tuple[Any, ...]:
    """The values of the bare names and attributes the offline rule's after_s reads
    (`plan.offline_inputs`) as `offline_after_s` sees them, and their types: with the
    plan's params they decide its value."""
    last, kind, ts = state.last, device.kind, state.last_ts or 0.0
    attrs = device.attrs
    values = [
        attrs.get(n[6:])
        if n.startswith("attrs.")
        else last[n]
        if n in last
        else _context_value(kind, n, last, ts)
        for n in plan.offline_inputs or ()
    ]
    return (*values, *map(type, values))  # typed: True == 1, but not in a condition


def _context_value(kind: str, name: str, fields: Mapping[str, Any], ts: float) -> Any:
    """`context(kind, fields, ts).get(name)`, without building the whole context."""
    if name == "local_hour":
        return int((ts + LOCAL_OFFSET_S) % 86400 // 3600)
    if kind == "streetlight" and name == "expected_on":
        return _CLOCK.is_on(int(ts * 1000))
    if kind == "streetlight" and name == "dim":
        pct = fields.get("light_state_pct")
        return pct / 100 if pct else 1.0
    return _kind_context(kind).get(name)


def offline_deadline(plan: Plan, device: Device, state: DeviceState) -> float | None:
    if state.last_seen is None or state.offline:
        return None
    after = offline_after_s(plan, device, state)
    return None if after is None else state.last_seen + after


def evaluate_offline(
    plan: Plan, device: Device, state: DeviceState, wall: float
) -> list[Transition]:
    """The offline rule at wall time `wall`: opens when the deadline has passed."""
    deadline = offline_deadline(plan, device, state)
    if deadline is None or wall < deadline or plan.offline_rule is None:
        return []
    state.offline = True
    rule = plan.offline_rule
    assert state.last_seen is not None
    detail = {"last_seen": state.last_seen, "after_s": deadline - state.last_seen}
    return [Transition(rule, device, "open", deadline, deadline, rule.severity, detail)]
