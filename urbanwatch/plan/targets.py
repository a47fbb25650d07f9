"""The plan's targets as data: the model, the seed shipped with the package, and edits that
keep their history (plan_target_history) and an audit entry."""

from __future__ import annotations

from datetime import date
from importlib import resources
from typing import Any, Literal

import psycopg
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from urbanwatch import audit
from urbanwatch.queries import targets as queries

Scope = Literal["city", "central", "county", "district"]
Comparator = Literal[">=", "<="]
# Fields `targets set` may change (the id is the identity).
EDITABLE = (
    "kpi", "title_zh", "title_en", "scope", "district", "comparator", "target_value", "unit",
    "deadline", "period_start", "clause_ref", "clause_zh", "lead_units", "partner_units", "note",
)  # fmt: skip


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_.-]+$")
    kpi: str | None = None
    title_zh: str = Field(min_length=1)
    title_en: str = Field(min_length=1)
    scope: Scope
    district: str | None = None
    comparator: Comparator | None = None
    target_value: float | None = Field(None, allow_inf_nan=False)
    unit: str = "%"
    deadline: date | None = None
    period_start: date | None = None
    clause_ref: str = Field(min_length=1)
    clause_zh: str = Field(min_length=1)
    lead_units: list[str] = Field(default_factory=list)
    partner_units: list[str] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if (self.scope == "district") != (self.district is not None):
            raise ValueError("district: required when scope is 'district', and only then")
        if (self.comparator is None) != (self.target_value is None):
            raise ValueError("comparator: give both comparator and target_value, or neither")
        return self


_SEED_LOCK_KEY = 0x75777467  # "uwtg": only seeders of plan_targets take it


def load_seed() -> list[Target]:
    """The targets shipped in urbanwatch/plan/targets.yaml."""
    text = (resources.files("urbanwatch.plan") / "targets.yaml").read_text("utf-8")
    return [Target.model_validate(item) for item in yaml.safe_load(text)]


def _snapshot(target: Target) -> dict[str, Any]:
    return target.model_dump(mode="json")


def seed_targets(
    conn: psycopg.Connection, actor: audit.Actor, *, replace: bool = False
) -> tuple[int, int]:
    """Insert the seeded targets that are missing (all of them with `replace`, overwriting
    edits, each overwrite in the history). Returns (created, replaced). A target that exists
    is never touched without `replace`, so `urbanwatch migrate` runs this on every run.
    Two seeders at once (two `migrate`s) queue on a transaction lock: the second finds
    the targets the first created instead of failing on their ids."""
    created = replaced = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SEED_LOCK_KEY,))
        for target in load_seed():
            current = queries.get_target(conn, target.id, lock=True)
            if current is None:
                _create(conn, target, actor)
                created += 1
            elif replace and current != target:
                _update(conn, current, target, actor)
                replaced += 1
    return created, replaced


def _create(conn: psycopg.Connection, target: Target, actor: audit.Actor) -> None:
    queries.insert_target(conn, target, actor.name)
    queries.insert_history(conn, target.id, actor.name, "create", None, _snapshot(target))
    audit.record(conn, actor, "create", "plan_target", target.id, after=_snapshot(target))


def _update(conn: psycopg.Connection, before: Target, after: Target, actor: audit.Actor) -> None:
    queries.update_target(conn, after, actor.name)
    queries.insert_history(
        conn, after.id, actor.name, "update", _snapshot(before), _snapshot(after)
    )
    old, new = _snapshot(before), _snapshot(after)
    changed = [k for k in new if old.get(k) != new[k]]
    audit.record(
        conn,
        actor,
        "update",
        "plan_target",
        after.id,
        before={k: old.get(k) for k in changed},
        after={k: new[k] for k in changed},
    )


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """`field=value` pairs from the command line; lists comma-separated, `null` clears."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or name not in EDITABLE:
            raise ValueError(f"{pair!r}: give FIELD=VALUE with FIELD one of {', '.join(EDITABLE)}")
        if value.strip().lower() in ("null", "none", ""):
            changes[name] = [] if name in ("lead_units", "partner_units") else None
        elif name in ("lead_units", "partner_units"):
            changes[name] = [u.strip() for u in value.replace("、", ",").split(",") if u.strip()]
        else:
            changes[name] = value.strip()
    return changes


def edit_target(
    conn: psycopg.Connection, target_id: str, changes: dict[str, Any], actor: audit.Actor
) -> tuple[Target, Target]:
    """Apply `changes` to one target; (before, after). KeyError: no such target; ValueError:
    the result is not a valid target (the message names the field)."""
    with conn.transaction():
        before = queries.get_target(conn, target_id, lock=True)
        if before is None:
            raise KeyError(target_id)
        try:
            after = Target.model_validate({**before.model_dump(), **changes})
        except ValidationError as exc:
            from urbanwatch.ledgers.base import describe

            raise ValueError(describe(exc)) from None
        if after != before:
            _update(conn, before, after, actor)
    return before, after
