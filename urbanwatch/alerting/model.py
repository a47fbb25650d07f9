"""Rules as data (docs/alerts.md): the rule model, overrides and `effective_rule`.

A rule is a trigger condition with a debounce (a minimum duration and/or consecutive
readings), a separate clear condition with its own hold time (hysteresis), a severity and
whether clearing resolves the alert. Conditions are expressions of urbanwatch/alerting/expr.py,
checked here against the kind's reading fields, the rule's params and windows, so a typo is
refused when the file is loaded, never at 3 a.m. on a live reading.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from urbanwatch.alerting.expr import ExprError, compile_expr
from urbanwatch.kinds import KINDS, READING_MODELS

Severity = Literal["info", "warning", "alarm", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "alarm", "critical")
RULE_ID = r"^[A-Z][A-Z0-9_]{1,63}$"
# Bare names a condition may read besides the kind's reading fields (alerting/evaluate.py).
CONTEXT_NAMES = frozenset(
    {
        "expected_on",  # streetlight: inside the expected-on window (sunset/sunrise, Anyang)
        "dim",  # light_state_pct / 100, or 1 when unknown or 0
        "local_hour",  # hour of the reading in Asia/Shanghai
        "work_window",  # an authorised work window covers the device now
        "heartbeat_s",  # the kind's cadence (urbanwatch/kinds), for offline rules
        "report_s",
        "fast_s",
        "urgent_s",
        "grace_s",
    }
)
Param = float | int | bool | str


class Window(BaseModel):
    """A rolling aggregate over the device's recent readings: `win.NAME` in conditions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    field: str
    agg: Literal["sum", "min", "max", "mean", "count", "changes"]
    s: float = Field(gt=0, le=7 * 86400)


def _reading_fields(kind: str) -> frozenset[str]:
    return frozenset(READING_MODELS[kind].model_fields) - {"ts"}


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=RULE_ID)
    kind: str
    type: Literal["reading", "offline"] = "reading"
    title: str = Field(min_length=2, max_length=200)
    severity: Severity
    evidence: str = Field("P", pattern=r"^[SVMP](/[SVMP])*\*?$")
    enabled: bool = True
    params: dict[str, Param] = Field(default_factory=dict)
    windows: dict[str, Window] = Field(default_factory=dict)
    trigger: str | None = None
    for_s: float = Field(0, ge=0, le=7 * 86400)
    count: int = Field(1, ge=1, le=1000)
    clear: str | None = None  # default: the trigger no longer holds
    clear_for_s: float = Field(0, ge=0, le=7 * 86400)
    clear_count: int = Field(1, ge=1, le=1000)
    auto_resolve: bool = True
    after_s: str | None = None  # offline rules: seconds of silence, an expression
    severity_in_work_window: Severity | None = None

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"unknown kind {value!r}; one of {', '.join(KINDS)}")
        return value

    @field_validator("title")
    @classmethod
    def _chinese_first(cls, value: str) -> str:
        if not "\u4e00" <= value[0] <= "\u9fff":
            raise ValueError("must start with Chinese (Chinese first, English alongside)")
        return value

    @field_validator("windows")
    @classmethod
    def _window_fields(cls, value: dict[str, Window], info: ValidationInfo) -> dict[str, Window]:
        kind = info.data.get("kind")
        for name, window in value.items():
            if kind and window.field not in _reading_fields(kind):
                raise ValueError(f"window {name}: {kind} readings have no field {window.field!r}")
        return value

    @field_validator("trigger", "clear", "after_s")
    @classmethod
    def _expression(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            expr = compile_expr(value)
        except ExprError as exc:
            raise ValueError(str(exc)) from None
        kind = info.data.get("kind")
        if kind is None:  # the kind itself was refused; that error is reported
            return value
        problem = _unknown_name(
            expr.names, kind, info.data.get("params", {}), info.data.get("windows", {})
        )
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _shape(self) -> Rule:
        if self.type == "reading" and self.trigger is None:
            raise ValueError("a reading rule needs a trigger")
        if self.type == "offline" and self.after_s is None:
            raise ValueError("an offline rule needs after_s")
        return self


def _unknown_name(
    names: Iterable[tuple[str | None, str]], kind: str, params: dict[str, Any], windows: Any
) -> str | None:
    fields = _reading_fields(kind)
    for ns, name in sorted(names, key=lambda n: (n[0] or "", n[1])):
        if ns is None and name not in fields and name not in CONTEXT_NAMES:
            return f"unknown name {name!r}: not a {kind} reading field nor a context value"
        if ns in ("prev", "held") and name not in fields:
            return f"{ns}.{name}: {kind} readings have no field {name!r}"
        if ns == "profile" and name.removesuffix("_sd") not in fields:  # X_sd: X's spread
            return f"{ns}.{name}: {kind} readings have no field {name.removesuffix('_sd')!r}"
        if ns == "params" and name not in params:
            return f"params.{name} is not in the rule's params"
        if ns == "win" and name not in windows:
            return f"win.{name} is not in the rule's windows"
    return None


class Override(BaseModel):
    """Changes to one rule for a kind, a district or one device; the most specific wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rule: str = Field(pattern=RULE_ID)
    kind: str | None = None
    district: str | None = None
    device: str | None = None
    params: dict[str, Param] = Field(default_factory=dict)
    severity: Severity | None = None
    enabled: bool | None = None
    for_s: float | None = Field(None, ge=0, le=7 * 86400)
    count: int | None = Field(None, ge=1, le=1000)
    clear_for_s: float | None = Field(None, ge=0, le=7 * 86400)

    @model_validator(mode="after")
    def _one_scope(self) -> Override:
        scopes = [s for s in (self.kind, self.district, self.device) if s is not None]
        if len(scopes) != 1:
            raise ValueError("name exactly one of kind, district, device")
        return self

    @property
    def rank(self) -> int:
        return 2 if self.device else 1 if self.district else 0

    def applies(self, kind: str, district: str | None, device_id: str) -> bool:
        return (
            self.device == device_id
            or (self.district is not None and self.district == district)
            or self.kind == kind
        )


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    # A fault that returns within this long reopens its resolved alert (a flap) instead of
    # opening a new one [P].
    reopen_within_s: float = Field(3600, ge=0, le=7 * 86400)
    rules: list[Rule]
    overrides: list[Override] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        seen: dict[str, Rule] = {}
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"rule {rule.id} is defined twice")
            seen[rule.id] = rule
        for override in self.overrides:
            target = seen.get(override.rule)
            if target is None:
                raise ValueError(f"override of unknown rule {override.rule}")
            for key, value in override.params.items():
                if not _same_type(value, target.params.get(key)):
                    raise ValueError(
                        f"override of {target.id}: params.{key} is not one of the rule's "
                        f"params, or not of its type"
                    )
        return self

    def by_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]


def _same_type(value: Param, default: Param | None) -> bool:
    if default is None:
        return False
    number = (int, float)
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    return isinstance(value, number) == isinstance(default, number)


def effective_rule(
    rule: Rule, overrides: Iterable[Override], kind: str, district: str | None, device_id: str
) -> Rule:
    """The rule as it applies to one device: overrides by kind, then district, then device
    (the most specific wins, key by key)."""
    mine = sorted(
        (o for o in overrides if o.rule == rule.id and o.applies(kind, district, device_id)),
        key=lambda o: o.rank,
    )
    if not mine:
        return rule
    update: dict[str, Any] = {"params": dict(rule.params)}
    for o in mine:
        update["params"].update(o.params)
        for key in ("severity", "enabled", "for_s", "count", "clear_for_s"):
            value = getattr(o, key)
            if value is not None:
                update[key] = value
    return rule.model_copy(update=update)
