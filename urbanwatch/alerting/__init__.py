"""Alert rules as data and their pure evaluation (docs/alerts.md): the rule model and
overrides (model.py), the condition language (expr.py), rule files (loader.py), per-device
state (state.py) and evaluation (evaluate.py). No I/O here; the engine is `alerts/`."""

from urbanwatch.alerting.evaluate import (
    Device,
    Plan,
    Transition,
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
from urbanwatch.alerting.loader import RuleFileError, default_rules, parse_rules
from urbanwatch.alerting.model import Override, Rule, RuleSet, effective_rule
from urbanwatch.alerting.state import DeviceState, RuleState

__all__ = [
    "Device",
    "DeviceState",
    "Override",
    "Plan",
    "Rule",
    "RuleFileError",
    "RuleSet",
    "RuleState",
    "Transition",
    "default_rules",
    "effective_rule",
    "evaluate_offline",
    "evaluate_reading",
    "evaluate_timers",
    "make_plan",
    "next_timer",
    "note_seen",
    "offline_after_s",
    "offline_deadline",
    "offline_inputs",
    "parse_rules",
]
